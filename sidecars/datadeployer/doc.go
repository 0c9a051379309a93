// Package datadeployer is the program that runs in every pod that uses
// AutoCrane data: for each data deployment NAME of the pod it reads the
// version the controller requests (request.data.autocrane.io/NAME, from
// the downward API file), downloads that version's tar blob from the data
// repository (verifying its digest, resuming after interruptions),
// extracts it safely under LOCATION/.autocrane/versions/HEX, and publishes
// it by renaming a symlink over LOCATION/NAME, so that readers see the old
// tree or the new one, never a mix or nothing. It reports what it holds on
// /status (the controller mirrors it into status.data.autocrane.io/NAME),
// a watchdog on /watchdog, and metrics.
//
// It needs no Kubernetes API credentials, talks to the repository over
// HTTP only (it must not import the repository's code), and reads
// annotations only through spec/ and sidecars/podinfo.
//
// Layout under LOCATION (see docs/datadeployer.md for what apps may rely on):
//
//	NAME                     -> .autocrane/versions/HEX  (symlink, swapped by rename)
//	.autocrane/versions/HEX/ the extracted tree of blob sha256:HEX
//	.autocrane/staging/      downloads in progress (HEX.partial, HEX.etag, HEX.tar)
//	.autocrane/state.json    what is live and since when, written atomically
package datadeployer
