-- include: pending_writes
-- Appends a message's turns to a conversation's memory once: the message's ledger (shared/ledger.py) gets its
-- `memory` flag in the same step, with the ledger's pending field writes (a copy that lost its claim only gets its
-- facts about sends written). A job redelivered after it stored its turn does not store it twice.
-- KEYS: memory list, the message's ledger ('' = always append).
-- ARGV: max, ttl_s, now_ms, claim token ('' = no claim check), count of ledger writes, (field, value) per write,
-- entries...
-- Returns R.APPENDED or R.ALREADY_APPENDED.
local n = tonumber(ARGV[5])
if KEYS[2] ~= '' then
  local owner = ARGV[4] == '' or redis.call('HGET', KEYS[2], 'claim') == ARGV[4]
  apply_pending(KEYS[2], owner, 6, n)
  if redis.call('HSETNX', KEYS[2], 'memory', ARGV[3]) == 0 then return R.ALREADY_APPENDED end
end
for i = 6 + 2 * n, #ARGV do redis.call('RPUSH', KEYS[1], ARGV[i]) end
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[1]), -1)
redis.call('EXPIRE', KEYS[1], ARGV[2])
return R.APPENDED
