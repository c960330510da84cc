# Runs inside the test container (busybox sh) via `ctr run ... /bin/sh -c "$(cat this)"`.
# Every line of output is compared with integration/expected_checks.txt.
cat /data/keep.txt /data/modified.txt /data/to-delete.txt
test -e /data/dir-to-delete && echo "dir-to-delete present" || echo "dir-to-delete gone"
test -f /data/dir-to-file && cat /data/dir-to-file
test -d /data/file-to-dir && cat /data/file-to-dir/inner.txt
echo "file-to-symlink -> $(readlink /data/file-to-symlink)"
echo "opaque: $(ls -A /data/opaque | tr '\n' ' ')"
echo "opaque/subold: $(ls -A /data/opaque/subold | tr '\n' ' ')"
echo "hard links: $(stat -c %h /data/hard/a /data/hard/b /data/hard/c | tr '\n' ' ')"
test "$(stat -c %i /data/hard/a)" = "$(stat -c %i /data/hard/c)" && echo "hard same inode"
echo "l2hard: $(ls -A /l2hard | tr '\n' ' ') x=$(stat -c '%a %u:%g' /l2hard/x)"
test "$(stat -c %i /l2hard/x)" = "$(stat -c %i /l2hard/z)" && echo "l2hard same inode"
echo "rel -> $(readlink /links/rel): $(cat /links/rel)"
echo "abs -> $(readlink /links/abs): $(cat /links/abs)"
echo "dangling -> $(readlink /links/dangling)"
test -e /links/dangling || echo "dangling does not resolve"
test -e /links/dirlink || test -L /links/dirlink || echo "dirlink gone"
test -d /links/to-dir-later && ! test -L /links/to-dir-later && cat /links/to-dir-later/f
stat -c '%n %F %t:%T %a' /dev-test/null /dev-test/blk
stat -c '%n %F' /dev-test/fifo
echo "sparse size $(stat -c %s /sparse/big)"
echo "sparse head $(head -c 4 /sparse/big) tail $(tail -c 4 /sparse/big)"
echo "names: $(ls /names | wc -l)"
cat "/names/with space" /names/-leading-dash "/names/quote'single\"double"
stat -c '%n %a %u %g' /modes/setuid /modes/setgid /modes/readonly /modes/noperm /modes/chmodded
stat -c '%n %a %u %g' /modes/private /modes/sticky /tmp /owners/u1000 /owners/nobody /owners/dir1000
cat /modes/private/secret /owners/nobody /owners/dir1000/inside
echo written > /tmp/probe && cat /tmp/probe
echo "uid $(id -u)"
# layer 4 (umoci repack of real changes)
test -e /xattr/dropped || echo "xattr/dropped gone"
stat -c '%n %a %u %g' /data/modified.txt "/names/with space"
echo "umoci: $(ls -A /umoci | tr '\n' ' ')"
stat -c '%n %F %h %a %u %g' /umoci/file /umoci/link /umoci/fifo
# A directory's link count depends on the filesystem (btrfs always says 1): not compared.
stat -c '%n %F %a %u %g' /umoci/private
stat -c '%n %F %t:%T %a' /umoci/zero
echo "umoci rel -> $(readlink /umoci/rel), dangling -> $(readlink /umoci/dangling)"
echo "umoci sparse $(stat -c %s /umoci/sparse) $(tail -c 3 /umoci/sparse)"
