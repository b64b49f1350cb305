-- include: pending_writes
-- Write pending ledger fields (see shared/ledger.py), and optionally take back an unsent part.
-- KEYS[1] the message's ledger. ARGV: token, part to release ('' none), then count, field, value, ...
-- A copy that lost its claim only gets its facts about sends written. Returns R.WRITTEN.
local ledger, token = KEYS[1], ARGV[1]
local owner = token == '' or redis.call('HGET', ledger, 'claim') == token
apply_pending(ledger, owner, 4, tonumber(ARGV[3]))
if ARGV[2] ~= '' and redis.call('HGET', ledger, 'send:' .. ARGV[2]) == 'sending' then
  redis.call('HDEL', ledger, 'send:' .. ARGV[2], 'send:' .. ARGV[2] .. ':until')
end
return R.WRITTEN
