-- Replaces an estimated cost with the real figure (tokens from `usage`, seconds from the transcript) without moving
-- the entry in time.
-- KEYS: dimension set. ARGV: member id, estimated cost, actual cost.
-- Returns R.SETTLED, or R.NOT_FOUND when the entry has already left the window.
local old = ARGV[1] .. '|' .. ARGV[2]
local score = redis.call('ZSCORE', KEYS[1], old)
if not score then return R.NOT_FOUND end
redis.call('ZREM', KEYS[1], old)
redis.call('ZADD', KEYS[1], score, ARGV[1] .. '|' .. ARGV[3])
return R.SETTLED
