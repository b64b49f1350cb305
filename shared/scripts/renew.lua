-- Heartbeat of a running job: push its claim's and its conversation lease's expiry forward.
-- KEYS: inbox, leases, run. ARGV: token, now_ms, lease_ms.
-- Returns R.RENEWED, or R.CLAIM_LOST when this copy no longer holds the claim.
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return R.CLAIM_LOST end
redis.call('PEXPIRE', KEYS[3], ARGV[3])
redis.call('ZADD', KEYS[2], 'XX', tonumber(ARGV[2]) + tonumber(ARGV[3]), KEYS[1])
return R.RENEWED
