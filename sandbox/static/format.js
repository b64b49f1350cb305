// WhatsApp's formatting (https://faq.whatsapp.com/539178204879377): *bold*, _italic_, ~strike~, ```monospace```,
// `inline code`, "> quote" and "- " lists, rendered as HTML after escaping everything the bot wrote.
"use strict";
function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
function formatInline(html) {
  return html
    .replace(/`([^`\n]+)`/g, "<code>$1</code>")
    .replace(/(^|[\s(])\*(\S(?:[^*\n]*\S)?)\*(?=$|[\s.,!?:;)])/g, "$1<b>$2</b>")
    .replace(/(^|[\s(])_(\S(?:[^_\n]*\S)?)_(?=$|[\s.,!?:;)])/g, "$1<i>$2</i>")
    .replace(/(^|[\s(])~(\S(?:[^~\n]*\S)?)~(?=$|[\s.,!?:;)])/g, "$1<s>$2</s>");
}
function formatWhatsApp(text) {
  const parts = escapeHtml(text).split("```");
  return parts
    .map((part, index) => {
      if (index % 2 === 1) return `<pre>${part.replace(/^\n/, "")}</pre>`;
      return part
        .split("\n")
        .map((line) => {
          if (line.startsWith("&gt; ")) return `<span class="quote-line">${formatInline(line.slice(5))}</span>`;
          return formatInline(line);
        })
        .join("<br>");
    })
    .join("");
}
if (typeof module !== "undefined") module.exports = { formatWhatsApp };
