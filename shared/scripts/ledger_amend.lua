-- An edit or a revoke of an earlier message, decided atomically against that message's send gate
-- (ledger_send.lua): either its answer has not started going out, and the flag set here stops every part of it,
-- or a part is sent (or being sent), and the amendment comes after the answer. Run by the API for the edits and
-- revokes of a webhook batch only, just before INGEST (the ack path of other messages is unchanged).
-- KEYS: per amendment (the original message's ledger, the amendment's own ledger).
-- ARGV: ledger prefix, ledger_ttl_s, then per amendment (kind: 'edit' or 'revoke', the amendment's ref, the original's
-- ref).
-- The answer of an original that an earlier edit replaced lives in that edit's ledger (the original's
-- `superseded_by`): a second edit supersedes it there, a revoke cancels it there. An original that is part of a
-- closed burst (burst_close.lua) is answered with the burst: its amendment always comes after.
-- Writes into the amendment's ledger `amend` (its decision) and `amend_of` (the original's ref); a redelivered
-- amendment keeps the decision it got first.
-- Returns per amendment: R.AMEND_INSTEAD (an edit replaces the unanswered original: answer the edit),
-- R.AMEND_CANCELLED (a revoke stopped the unanswered original), R.AMEND_AFTER (the original was answered, or is
-- unknown: answer an edit as a correction, take a revoked turn out of memory).
local DECISION = {instead = R.AMEND_INSTEAD, cancelled = R.AMEND_CANCELLED, after = R.AMEND_AFTER}
local function answered(ledger)
  local fields = redis.call('HGETALL', ledger)
  for i = 1, #fields, 2 do
    local field, value = fields[i], fields[i + 1]
    -- A part's state (not its facts, which hold ids and times); the acknowledgement reaction is not an answer.
    if (value == 'done' or value == 'sending') and string.sub(field, 1, 5) == 'send:'
      and string.sub(field, 1, 9) ~= 'send:ack:' then
      return true
    end
  end
  return false
end
local result = {}
for i = 1, #KEYS / 2 do
  local original, own = KEYS[2 * i - 1], KEYS[2 * i]
  local a = 2 + (i - 1) * 3
  local kind, ref, original_ref = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local decision = redis.call('HGET', own, 'amend')
  if not decision then
    decision = 'after'
    if redis.call('EXISTS', original) == 1 then
      local holder = redis.call('HGET', original, 'superseded_by')
      local target = holder and (ARGV[1] .. holder) or original
      -- A burst's answer (the original merged into it, or holding it) answers other messages too: it goes out,
      -- and the amendment comes after it (a correction; the deleted message's turn leaves memory).
      local in_burst = redis.call('HEXISTS', target, 'flag:merged') == 1 or redis.call('HEXISTS', target, 'burst') == 1
      if redis.call('EXISTS', target) == 1 and not in_burst and not answered(target) then
        if kind == 'edit' then
          redis.call('HSET', target, 'flag:superseded', ref)
          redis.call('HSET', original, 'superseded_by', ref)
          decision = 'instead'
        else
          redis.call('HSET', target, 'flag:cancelled', ref)
          decision = 'cancelled'
        end
      end
    end
    redis.call('HSET', own, 'amend', decision, 'amend_of', original_ref)
    redis.call('EXPIRE', own, ARGV[2])
  end
  result[i] = DECISION[decision] or R.AMEND_AFTER
end
return result
