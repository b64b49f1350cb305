-- One user's messages that go to a model, in a rolling window (workers/clients/user_rate_limit.py).
--
-- KEYS[1] the user's window log: message hash -> admission time (us)
-- KEYS[2] the user's "please slow down" marker for this window: the hash of the message that sends it
-- ARGV[1] message hash; ARGV[2] messages per window; ARGV[3] window (us)
--
-- Returns R.USER_ANSWER (logged; a message already in the log is answered again: a redelivered job),
-- R.USER_SLOW_DOWN (not answered; the window's notice: its first refused message, or that message redelivered),
-- R.USER_QUIET (not answered).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local member, limit, window = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local window_ms = math.ceil(window / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZSCORE', KEYS[1], member) then return R.USER_ANSWER end
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, member)
  redis.call('PEXPIRE', KEYS[1], window_ms)
  return R.USER_ANSWER
end
if redis.call('SET', KEYS[2], member, 'NX', 'PX', window_ms) or redis.call('GET', KEYS[2]) == member then
  return R.USER_SLOW_DOWN
end
return R.USER_QUIET
