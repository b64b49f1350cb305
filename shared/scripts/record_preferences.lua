-- Record marketing-preference updates (`user_preferences` webhooks), newest per person and category.
-- KEYS: one preferences hash (`lp:prefs:<identity digest>`) per update.
-- ARGV: ttl_s, then (category, value, timestamp) per update.
-- Returns the number of updates recorded (older than what is stored: skipped; Meta may deliver out of order).
local recorded = 0
for i = 1, #KEYS do
  local a = 2 + (i - 1) * 3
  local category, at = ARGV[a], tonumber(ARGV[a + 2])
  local known = tonumber(redis.call('HGET', KEYS[i], category .. ':at') or '-1')
  if at >= known then
    redis.call('HSET', KEYS[i], category, ARGV[a + 1], category .. ':at', ARGV[a + 2])
    recorded = recorded + 1
  end
  redis.call('EXPIRE', KEYS[i], ARGV[1])
end
return recorded
