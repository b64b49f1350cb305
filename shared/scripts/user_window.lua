-- Shared by user_message_window.lua and ledger_claim.lua: one user's messages that go to a model, in a rolling
-- window (workers/clients/user_rate_limit.py). `log`: the user's window log (message hash -> admission time, us);
-- `notice`: the user's "please slow down" marker for this window (the hash of the message that sends it).
-- Returns R.USER_ANSWER (logged; a message already in the log is answered again: a redelivered job),
-- R.USER_SLOW_DOWN (not answered; the window's notice: its first refused message, or that message redelivered),
-- R.USER_QUIET (not answered).
local function user_window(log, notice, member, limit, window)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local window_ms = math.ceil(window / 1000)
  redis.call('ZREMRANGEBYSCORE', log, '-inf', now - window)
  if redis.call('ZSCORE', log, member) then return R.USER_ANSWER end
  if redis.call('ZCARD', log) < limit then
    redis.call('ZADD', log, now, member)
    redis.call('PEXPIRE', log, window_ms)
    return R.USER_ANSWER
  end
  if redis.call('SET', notice, member, 'NX', 'PX', window_ms) or redis.call('GET', notice) == member then
    return R.USER_SLOW_DOWN
  end
  return R.USER_QUIET
end
