#!lua
--[[ sorted_set/add
  Add a member with a score, or change the score of an existing member (ZADD).
  KEYS[1]  set  sorted set
  ARGV[1]  score  a decimal float as text ("1.5e0", "-inf"); never NaN
  ARGV[2]  member  encoded member
  Returns  1 when the member is new, 0 when its score was updated
  Worst case  O(log N)
]]
return redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
