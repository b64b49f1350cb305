-- Takes one call (and its costs) from a Groq model's shared budget, or says how long to wait.
-- KEYS: cooldown, then one sorted set per dimension. ARGV: member id, then (limit, window_us, cost) per dimension.
-- Returns {R.ADMITTED, 0, 0} (recorded in every dimension), or {R.OVER_BUDGET, wait_us, dimension} (1-based;
-- 0 = the cooldown).
-- Microseconds, not milliseconds: with ms truncation a call could be admitted up to 1 ms before the window that
-- holds the oldest call has really passed. (Doubles hold epoch microseconds exactly.)
local function cost_of(member) return tonumber(string.match(member, '|(%d+)$')) or 1 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cool = redis.call('PTTL', KEYS[1])
if cool > 0 then return {R.OVER_BUDGET, cool * 1000, 0} end
local wait, which = 0, 0
local costs = {}
for i = 2, #KEYS do
  local a = 2 + (i - 2) * 3
  local limit, window, cost = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  -- A single call bigger than the whole budget could never pass; let it through alone (Groq answers 413).
  if cost > limit then cost = limit end
  costs[i] = cost
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  local entries = redis.call('ZRANGE', KEYS[i], 0, -1, 'WITHSCORES')
  local used = 0
  for j = 1, #entries, 2 do used = used + cost_of(entries[j]) end
  local need = used + cost - limit
  if need > 0 then
    local freed = 0
    for j = 1, #entries, 2 do
      freed = freed + cost_of(entries[j])
      if freed >= need then
        local w = tonumber(entries[j + 1]) + window - now
        if w > wait then wait, which = w, i - 1 end
        break
      end
    end
  end
end
if wait > 0 then return {R.OVER_BUDGET, wait, which} end
for i = 2, #KEYS do
  local window = tonumber(ARGV[2 + (i - 2) * 3 + 1])
  redis.call('ZADD', KEYS[i], now, ARGV[1] .. '|' .. costs[i])
  redis.call('PEXPIRE', KEYS[i], math.ceil(window / 1000))
end
return {R.ADMITTED, 0, 0}
