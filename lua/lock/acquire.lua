#!lua
--[[ lock/acquire
  Take the lock when no one holds it: store the holder's token only if the key
  does not exist (SET NX), with an optional expiry, and draw the next fencing
  number, in one step. Python redisext does EXISTS, SET, EXPIRE in three round
  trips, which lets two holders in.
  KEYS[1]  lock (string; it exists while the lock is held, whatever its value)
  KEYS[2]  fencing counter (string; only grows, and outlives each holder)
  ARGV[1]  the new holder's token (never empty; Python redisext stores "")
  ARGV[2]  expiry in milliseconds, or "0" for a lock that never expires
  Returns  {token, fencing number} when the lock was taken, nil when the key already exists
  Worst case  O(1)
]]
local taken
if ARGV[2] == '0' then
  taken = redis.call('SET', KEYS[1], ARGV[1], 'NX')
else
  taken = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
end
if taken then
  return {ARGV[1], redis.call('INCR', KEYS[2])}
end
return false
