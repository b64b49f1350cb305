-- Takes one call (and its costs) from a Groq model's shared budget, fairly between conversations, or says how long
-- to wait (workers/clients/rate_limit.py).
--
-- KEYS[1]  cooldown key (set by a 429: nobody calls the model until it expires)
-- KEYS[2]  waiting set: conversation -> the time (us) until which it counts as waiting for this model
-- KEYS[3..] one rolling-window log per dimension: members "<call id>:<conversation>|<cost>", scored by admission time
-- ARGV[1]  call id "<uuid>:<conversation>"; ARGV[2] conversation ("" = none: never waits for a share, never counted as one);
-- ARGV[3]  grace (us) a refused conversation keeps counting as waiting after its wait; ARGV[4] 1 = fair sharing on
-- ARGV[5..] per dimension: limit, window (us), cost
--
-- Returns {R.ADMITTED, 0, 0, 0} (recorded in every dimension), or {R.OVER_BUDGET, wait_us, dimension, fair}:
-- dimension is 1-based (0 = the cooldown); fair = 1 when the budget had room but this conversation has had its
-- share while others wait.
-- Microseconds, not milliseconds: with ms truncation a call could be admitted up to 1 ms before the window that
-- holds the oldest call has really passed. (Doubles hold epoch microseconds exactly.)
--
-- Fair share: while another conversation is waiting for this model, a conversation that already has calls in the
-- window may use at most limit / active of each dimension, where active counts the conversations with calls in
-- the window plus the waiting ones. Freed budget then goes to those who waited, not to the one that flooded it.
local function cost_of(member) return tonumber(string.match(member, '|(%d+)$')) or 1 end
local function party_of(member) return string.match(member, '^[^:]*:(.*)|%d+$') or '' end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local party, grace, fair_on = ARGV[2], tonumber(ARGV[3]), ARGV[4] == '1'

local function wait_as(party_wait)
  if party ~= '' then
    local until_us = now + party_wait + grace
    local old = tonumber(redis.call('ZSCORE', KEYS[2], party) or '0')
    if until_us > old then redis.call('ZADD', KEYS[2], until_us, party) end
    redis.call('PEXPIRE', KEYS[2], math.ceil((party_wait + grace) / 1000) + 1000)
  end
end

local cool = redis.call('PTTL', KEYS[1])
if cool > 0 then
  wait_as(cool * 1000)
  return {R.OVER_BUDGET, cool * 1000, 0, 0}
end

redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local others_waiting = redis.call('ZCARD', KEYS[2])
if party ~= '' and redis.call('ZSCORE', KEYS[2], party) then others_waiting = others_waiting - 1 end
local fair = fair_on and party ~= '' and others_waiting > 0

local wait, which, unfair = 0, 0, 0
local costs = {}
for i = 3, #KEYS do
  local a = 5 + (i - 3) * 3
  local limit, window, cost = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  -- A single call bigger than the whole budget could never pass; let it through alone (Groq answers 413).
  if cost > limit then cost = limit end
  costs[i] = cost
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  local entries = redis.call('ZRANGE', KEYS[i], 0, -1, 'WITHSCORES')
  local used, mine = 0, 0
  local parties = {}
  for j = 1, #entries, 2 do
    local c = cost_of(entries[j])
    used = used + c
    local p = party_of(entries[j])
    if p ~= '' then parties[p] = true end
    if p == party then mine = mine + c end
  end
  local need = used + cost - limit
  if need > 0 then
    local freed = 0
    for j = 1, #entries, 2 do
      freed = freed + cost_of(entries[j])
      if freed >= need then
        local w = tonumber(entries[j + 1]) + window - now
        if w > wait then wait, which = w, i - 2 end
        break
      end
    end
  end
  -- A conversation with nothing in the window is always within its share (so a call bigger than a share passes).
  if fair and mine > 0 then
    local waiting = redis.call('ZRANGE', KEYS[2], 0, -1)
    for _, p in ipairs(waiting) do parties[p] = true end
    parties[party] = true
    local active = 0
    for _ in pairs(parties) do active = active + 1 end
    local share = limit / active
    local over = mine + cost - share
    if over > 0 then
      local freed = 0
      for j = 1, #entries, 2 do
        if party_of(entries[j]) == party then
          freed = freed + cost_of(entries[j])
          if freed >= over then
            local w = tonumber(entries[j + 1]) + window - now
            if w > wait then wait, which, unfair = w, i - 2, 1 end
            break
          end
        end
      end
    end
  end
end
if wait > 0 then
  wait_as(wait)
  return {R.OVER_BUDGET, wait, which, unfair}
end
for i = 3, #KEYS do
  local window = tonumber(ARGV[5 + (i - 3) * 3 + 1])
  redis.call('ZADD', KEYS[i], now, ARGV[1] .. '|' .. costs[i])
  redis.call('PEXPIRE', KEYS[i], math.ceil(window / 1000))
end
if party ~= '' then redis.call('ZREM', KEYS[2], party) end
return {R.ADMITTED, 0, 0, 0}
