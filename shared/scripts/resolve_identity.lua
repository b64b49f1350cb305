-- Which conversation each message belongs to, linking a person's phone number and business-scoped user id (BSUID).
-- KEYS: the identity links (`lp:who:<digest>`) of every message, in order, BSUID first within a message (then, for
-- a changed number, the new identities: they are linked, never decide).
-- ARGV: link_ttl_s, then (link count, candidate conversation) per message.
-- Returns per message: its conversation id.
-- A message's conversation is its BSUID's link, else its phone's, else the candidate (a new conversation). Every
-- identity of the message is then linked to it: a BSUID link never changes (it is the first one read), a phone
-- link follows the BSUID it was seen with (a phone number seen alone before the BSUID joins the BSUID's
-- conversation only if the BSUID had none of its own; otherwise the BSUID's conversation wins from then on).
local result = {}
local k = 1
for i = 1, (#ARGV - 1) / 2 do
  local count, conversation = tonumber(ARGV[2 * i]), nil
  for j = k, k + count - 1 do
    conversation = conversation or redis.call('GET', KEYS[j])
  end
  conversation = conversation or ARGV[2 * i + 1]
  for j = k, k + count - 1 do
    redis.call('SET', KEYS[j], conversation, 'EX', ARGV[1])
  end
  k = k + count
  result[i] = conversation
end
return result
