#!lua flags=no-writes
--[[ sorted_set/members_by_score
  List the members whose score lies in a range, lowest score first
  (ZRANGE BYSCORE, Python's ZRANGEBYSCORE).
  KEYS[1]  set  sorted set
  ARGV[1]  min  lowest score: "-inf", a float, or "(" and a float for an open bound
  ARGV[2]  max  highest score, in the same form ("+inf" for no bound)
  ARGV[3]  with_scores  "1" to return each member's score after it, "0" for members only
  Returns  an array of member bytes, or of member, score pairs flattened
    (scores as text); empty when nothing is in the range
  Worst case  O(log N + M), M the members in the range: all of them are
    returned, as Python redisext returns them
]]
if ARGV[3] == '1' then
  return redis.call('ZRANGE', KEYS[1], ARGV[1], ARGV[2], 'BYSCORE', 'WITHSCORES')
end
return redis.call('ZRANGE', KEYS[1], ARGV[1], ARGV[2], 'BYSCORE')
