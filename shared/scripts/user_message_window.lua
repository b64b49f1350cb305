-- include: user_window
-- One user's messages that go to a model, in a rolling window (workers/clients/user_rate_limit.py).
-- KEYS[1] the user's window log, KEYS[2] the user's "please slow down" marker for this window.
-- ARGV[1] message hash; ARGV[2] messages per window; ARGV[3] window (us).
-- Returns R.USER_ANSWER, R.USER_SLOW_DOWN or R.USER_QUIET (see user_window.lua).
return user_window(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]))
