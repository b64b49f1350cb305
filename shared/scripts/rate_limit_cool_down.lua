-- Groq answered 429 with a retry-after: nobody calls this model before then. Only ever lengthens a cooldown: two
-- 429s must not shorten each other's wait.
-- KEYS: cooldown. ARGV: ms. Returns R.COOLDOWN_SET or R.COOLDOWN_KEPT (a longer one was already running).
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
  return R.COOLDOWN_SET
end
return R.COOLDOWN_KEPT
