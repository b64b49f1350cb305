-- Write pending ledger fields (see shared/ledger.py), and optionally take back an unsent part.
-- KEYS[1] the message's ledger. ARGV: token, part to release ('' none), then count, field, value, ...
-- A copy that lost its claim only gets its facts about sends written. Returns R.WRITTEN.
local ledger, token = KEYS[1], ARGV[1]
local owner = token == '' or redis.call('HGET', ledger, 'claim') == token
local n = tonumber(ARGV[3])
for i = 4, 3 + 2 * n, 2 do
  if owner or string.sub(ARGV[i], 1, 5) == 'send:' then redis.call('HSET', ledger, ARGV[i], ARGV[i + 1]) end
end
if ARGV[2] ~= '' and redis.call('HGET', ledger, 'send:' .. ARGV[2]) == 'sending' then
  redis.call('HDEL', ledger, 'send:' .. ARGV[2], 'send:' .. ARGV[2] .. ':until')
end
return R.WRITTEN
