#!lua flags=no-writes
--[[ sorted_set/members
  List every member, highest score first (ZRANGE 0 -1 REV, Python's ZREVRANGE).
  KEYS[1]  set  sorted set
  ARGV[1]  with_scores  "1" to return each member's score after it, "0" for members only
  Returns  an array of member bytes, or of member, score pairs flattened
    (scores as text, "inf" and "-inf" included); empty when the key does not exist
  Worst case  O(log N + N): the whole set is returned, as Python redisext returns it
]]
if ARGV[1] == '1' then
  return redis.call('ZRANGE', KEYS[1], 0, -1, 'REV', 'WITHSCORES')
end
return redis.call('ZRANGE', KEYS[1], 0, -1, 'REV')
