-- A job that defers itself (a retry with a countdown) releases its claim so the retried copy can take it, and
-- keeps the conversation leased until the retry is due.
-- KEYS: inbox, leases, run. ARGV: token, deadline_ms. Returns R.DEFERRED.
if redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
redis.call('ZADD', KEYS[2], 'XX', tonumber(ARGV[2]), KEYS[1])
return R.DEFERRED
