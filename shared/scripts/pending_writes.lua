-- A ledger's pending field writes (workers/delivery/ledger.py), applied by every ledger script: `n` (field, value)
-- pairs from ARGV[first]. A copy that lost its claim (`owner` false) only gets its facts about sends written.
-- A field '>' .. key is not a ledger field but a message the bot sent, by Meta's id (workers/delivery/outgoing.py):
-- value '<ttl_s> <ref> <part>', written as its own key, so recording it costs no round trip of its own.
local function apply_pending(ledger, owner, first, n)
  for i = first, first + 2 * n - 2, 2 do
    local field, value = ARGV[i], ARGV[i + 1]
    if string.sub(field, 1, 1) == '>' then
      local ttl, mapped = string.match(value, '^(%d+) (.*)$')
      redis.call('SET', string.sub(field, 2), mapped, 'EX', ttl)
    elseif owner or string.sub(field, 1, 5) == 'send:' then
      redis.call('HSET', ledger, field, value)
    end
  end
end
