// Package repotest is a data repository for tests: a real HTTP server on
// loopback that serves blobs at /v1/blobs/sha256:HEX with Range, If-Range
// and ETag (net/http's ServeContent), and misbehaves on demand: it cuts a
// connection mid-body, stalls, serves bytes that do not match the digest,
// demands a token, or is down. Only tests import it.
package repotest
