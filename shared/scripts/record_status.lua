-- Record Meta's status webhooks for our reply parts (shared/callback_data.py names the part in each status), in
-- the ingest script's one round trip. Included by ingest.lua; `record_statuses(base)` reads ARGV from `base`:
-- ledger prefix, conversation state prefix, undelivered prefix, undelivered ttl_s, kept max, keep codes
-- (",131047,...,"), kept kinds (",text,voice,...,"), dead-letter key, dead-letter max, dead-letter task, then a
-- count and per status: ref, part, status, timestamp_ms, Meta's message id, error code ('' = none), the key that
-- records the message by its id ('' = none; workers/delivery/outgoing.py, kept ARGV[4] seconds like the ledgers).
-- Per part it keeps the first time of each status (`status:<part>:<status>`; they arrive out of order and more
-- than once, so history, not a state machine) and the failure's code. Any status proves Meta accepted the message:
-- a part whose HTTP answer was lost (`sending`, waiting for confirmation) becomes `done` with Meta's id, so no
-- copy sends it again, and is recorded by that id (a reaction to it then finds it). A `failed` part with a keep code is kept (its answer and question, once per answer) for
-- the user's next message; another code becomes a dead letter. A ledger that does not exist (expired) is left
-- alone. Returns one number per status: ms from the user's message's receipt to this `delivered` when it is the
-- message's first, else -1.
local function record_statuses(base)
  local ledger_prefix, state_prefix, kept_prefix = ARGV[base], ARGV[base + 1], ARGV[base + 2]
  local kept_ttl, kept_max = ARGV[base + 3], tonumber(ARGV[base + 4])
  local keep_codes, kept_kinds = ARGV[base + 5], ARGV[base + 6]
  local dlq, dlq_max, dlq_task = ARGV[base + 7], tonumber(ARGV[base + 8]), ARGV[base + 9]
  local latencies = {}
  for i = 1, tonumber(ARGV[base + 10]) do
    local a = base + 10 + (i - 1) * 7
    local ref, part, status, at, wamid, code = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6]
    local outgoing = ARGV[a + 7]
    local ledger = ledger_prefix .. ref
    latencies[i] = -1
    if redis.call('EXISTS', ledger) == 1 then
      local field = 'status:' .. part
      local new = redis.call('HSETNX', ledger, field .. ':' .. status, at) == 1
      if redis.call('HGET', ledger, 'send:' .. part) ~= 'done' then
        redis.call('HSET', ledger, 'send:' .. part, 'done', 'send:' .. part .. ':meta', wamid,
          'send:' .. part .. ':at', at, 'send:' .. part .. ':confirmed_by', status)
        if outgoing ~= '' then redis.call('SET', outgoing, ref .. ' ' .. part, 'EX', ARGV[4]) end
      end
      if status == 'delivered' and new and redis.call('HSETNX', ledger, 'delivered_ms', at) == 1 then
        -- Meta's timestamps are whole seconds: a reply delivered within the second of its question reads early.
        latencies[i] = math.max(0, tonumber(at) - tonumber(redis.call('HGET', ledger, 'received_ms') or at))
      end
      if status == 'failed' and new then
        redis.call('HSET', ledger, field .. ':error', code)
        local kind = string.match(part, '^[^:]+')
        if string.find(keep_codes, ',' .. code .. ',', 1, true) then
          local text = redis.call('HGET', ledger, 'keep:' .. kind)
          if text and string.find(kept_kinds, ',' .. kind .. ',', 1, true)
              and redis.call('HSETNX', ledger, 'kept', at) == 1 then
            local conv = redis.call('HGET', ledger, 'conv')
            local store = kept_prefix .. conv
            local item = cjson.encode({text = text, asked = redis.call('HGET', ledger, 'asked') or '',
              at = tonumber(at) / 1000, ref = ref})
            redis.call('RPUSH', store, item)
            redis.call('LTRIM', store, -kept_max, -1)
            redis.call('EXPIRE', store, kept_ttl)
            redis.call('HSET', state_prefix .. conv, 'kept_answers', '1')
          end
        elseif redis.call('HSETNX', ledger, field .. ':dead_letter', at) == 1 then
          local letter = cjson.encode({task = dlq_task, payload = {ref = ref, part = part},
            reason = 'graph_' .. (code ~= '' and code or 'unknown'),
            detail = 'Meta could not deliver this reply (failed status webhook)', failed_at = tonumber(at) / 1000})
          redis.call('LPUSH', dlq, letter)
          redis.call('LTRIM', dlq, 0, dlq_max - 1)
        end
      end
    end
  end
  return latencies
end
