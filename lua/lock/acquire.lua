#!lua
--[[ lock/acquire
  Take the lock when no one holds it: store the holder's token only if the key
  does not exist, with an optional expiry, and draw the next fencing number, in
  one step. Python redisext does EXISTS, SET, EXPIRE in three round trips, which
  lets two holders in. Sent again with the same token while the lock is held with
  it, it returns the same acquisition (the fencing number is still the counter's:
  no acquire draws one while the lock is held) and changes nothing. The counter
  is drawn first: it is the one write that can fail (a fencing counter holding
  something else), and then nothing has changed.
  KEYS[1]  lock  string; it exists while the lock is held, whatever its value
  KEYS[2]  fence  fencing counter (string; only grows, and outlives each holder)
  ARGV[1]  token  the new holder's token (never empty; Python redisext stores "")
  ARGV[2]  expiry_ms  milliseconds, or "0" for a lock that never expires
  Returns  {token, fencing number} when the lock was taken (or is held with this token),
           nil when the key already exists otherwise
  Worst case  O(1)
]]
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('TYPE', KEYS[1])['ok'] == 'string' and redis.call('GET', KEYS[1]) == ARGV[1] then
    return {ARGV[1], tonumber(redis.call('GET', KEYS[2]) or '0')}
  end
  return false
end
local fence = redis.call('INCR', KEYS[2])
if ARGV[2] == '0' then
  redis.call('SET', KEYS[1], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return {ARGV[1], fence}
