-- Takes back a message the ledger's claim counted in its user's window (ledger_claim.lua) when it turned out not to
-- go to a model (a fixed reply, a silent type, a stale message): it must not use up the user's budget or notice.
-- KEYS[1] the user's window log, KEYS[2] the user's "please slow down" marker. ARGV[1] message hash.
-- Returns R.RELEASED.
redis.call('ZREM', KEYS[1], ARGV[1])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return R.RELEASED
