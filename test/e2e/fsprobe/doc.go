// Command fsprobe reports what a container sees of a directory, for the
// end-to-end tests: which regular files it holds and whether it can write
// there. The test image (autocrane-e2e:dev) carries it next to AutoCrane's
// programs, because those images have no shell to look with.
//
//	fsprobe check-data DIR
//
// prints one JSON object ({"dir","files","writable","writeError"}) and
// exits 0 when DIR holds at least one regular file and refuses writes (a
// read-only data mount), 1 otherwise, 2 on bad usage.
//
//	fsprobe seed DIR
//
// writes hello.txt and sub/data.json under DIR: the content of the tests'
// data source, so they know what the app must see.
package main
