-- include: pending_writes
-- Claim one reply part for sending, behind the send gates, in one atomic step (see shared/ledger.py).
-- KEYS[1] the message's ledger, KEYS[2] the conversation's state hash.
-- ARGV: token ('' = a ledger opened without a claim), part, now_ms, in_flight_ms, window_until_ms, gates ('1'; '0'
-- skips the gates: taking back the acknowledgement reaction, workers/pipelines/ack_reaction.py), then the pending
-- field writes as count, field, value, ... (applied first; a copy that lost its claim only gets its facts about
-- sends written, never its stage results).
-- Returns {result, detail}: R.PART_CLAIMED (send now), R.ALREADY_SENT, R.IN_FLIGHT (detail: ms left, another copy
-- is sending it), R.CLAIM_LOST (this copy no longer holds the job), R.BLOCKED (detail: the gate's name).
local ledger, token, part, now = KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3])
local owner = token == '' or redis.call('HGET', ledger, 'claim') == token
apply_pending(ledger, owner, 8, tonumber(ARGV[7]))
local field = 'send:' .. part
local state = redis.call('HGET', ledger, field)
if state == 'done' then return {R.ALREADY_SENT, ''} end
if state == 'sending' then
  local left = tonumber(redis.call('HGET', ledger, field .. ':until') or '0') - now
  if left > 0 then return {R.IN_FLIGHT, tostring(left)} end
end
if not owner then return {R.CLAIM_LOST, ''} end
local function block(gate)
  redis.call('HSET', ledger, field, 'blocked', field .. ':gate', gate, field .. ':at', ARGV[3])
  return {R.BLOCKED, gate}
end
if ARGV[6] == '0' then
  redis.call('HSET', ledger, field, 'sending', field .. ':until', now + tonumber(ARGV[4]))
  return {R.PART_CLAIMED, ''}
end
for _, flag in ipairs({'cancelled', 'superseded', 'merged'}) do
  if redis.call('HGET', ledger, 'flag:' .. flag) then return block(flag) end
end
local conv = redis.call('HMGET', KEYS[2], 'paused_until', 'opted_out', 'window_until')
if conv[1] and tonumber(conv[1]) > now then return block('paused') end
if conv[2] then return block('opted_out') end
local window = math.max(tonumber(ARGV[5]), tonumber(conv[3] or '0'))
if now >= window then return block('outside_window') end
-- Record the newest window known, so an older message delivered later (a backlog) sees it. A state hash created
-- here expires a day after the window it records; an existing one keeps its own lifetime (an opt-out never expires).
if window > tonumber(conv[3] or '0') then
  local fresh = redis.call('EXISTS', KEYS[2]) == 0
  redis.call('HSET', KEYS[2], 'window_until', window)
  if fresh then redis.call('PEXPIREAT', KEYS[2], window + 86400000) end
end
redis.call('HSET', ledger, field, 'sending', field .. ':until', now + tonumber(ARGV[4]))
return {R.PART_CLAIMED, ''}
