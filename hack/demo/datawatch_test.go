package main

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/autocrane/autocrane/controller/datarollout"
	"github.com/autocrane/autocrane/spec"
)

const (
	testV1 = "20261121t150405z-aaaaaaaaaaaa"
	testV2 = "20261121t150505z-bbbbbbbbbbbb"
)

func testDigest(c byte) string {
	d := "sha256:"
	for range 64 {
		d += string(c)
	}
	return d
}

func testWatch() *dataWatch {
	w := &dataWorld{names: map[string]string{testV1: "v1", testV2: "v2"}}
	return newDataWatch(w, nil, nil)
}

func TestPodData(t *testing.T) {
	since := time.Date(2026, 11, 21, 15, 5, 0, 0, time.UTC)
	sinceText := since.Local().Format(time.TimeOnly)
	for name, tc := range map[string]struct {
		annotations map[string]string
		labels      map[string]string
		want        podData
	}{
		"a pod with neither request nor status": {
			want: podData{},
		},
		"a request and a live status name their versions": {
			annotations: map[string]string{
				spec.PrefixDataRequest + dataSource: dataSource + "/" + testV2 + "/" + testDigest('b'),
				spec.PrefixDataStatus + dataSource:  "live/" + testV2 + "/" + testDigest('b') + "/2026-11-21T15:05:00Z/",
			},
			labels: map[string]string{spec.LabelHealth: "info"},
			want:   podData{request: "v2", live: "v2", status: "live v2 since " + sinceText, health: "info"},
		},
		"a syncing pod holds its previous version, which is not live on its request": {
			annotations: map[string]string{
				spec.PrefixDataStatus + dataSource: "syncing/" + testV1 + "/" + testDigest('a') + "/2026-11-21T15:05:00Z/",
			},
			want: podData{status: "syncing, holding v1"},
		},
		"a failed sync says why, with versions named": {
			annotations: map[string]string{
				spec.PrefixDataStatus + dataSource: "failed/-/-/-/download " + testV2 + " failed",
			},
			want: podData{status: "failed, holding nothing: download v2 failed"},
		},
		"an unknown version keeps its id": {
			annotations: map[string]string{
				spec.PrefixDataRequest + dataSource: dataSource + "/20261122t000000z-cccccccccccc/" + testDigest('c'),
			},
			want: podData{request: "20261122t000000z-cccccccccccc"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Annotations: tc.annotations, Labels: tc.labels}}
			if got := testWatch().podData(pod); got != tc.want {
				t.Errorf("podData = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestDescribeState(t *testing.T) {
	v1 := datarollout.Version{ID: testV1, Digest: testDigest('a')}
	v2 := datarollout.Version{ID: testV2, Digest: testDigest('b')}
	for name, tc := range map[string]struct {
		state datarollout.State
		want  string
	}{
		"nothing yet": {want: "no last known good version"},
		"the first version rolling out": {
			state: datarollout.State{Rollout: &datarollout.Rollout{Version: v1, Groups: map[string]datarollout.GroupProgress{
				"uid/models": {Owner: "ReplicaSet/reader-1", Wave: 2},
			}}},
			want: "no last known good version; rolling out v1 (ReplicaSet/reader-1 at wave 3)",
		},
		"a rollout over a last known good version, one group done": {
			state: datarollout.State{LKG: &datarollout.Promoted{Version: v1}, Rollout: &datarollout.Rollout{Version: v2, Groups: map[string]datarollout.GroupProgress{
				"a/models": {Owner: "ReplicaSet/reader-1", Done: true},
				"b/models": {Owner: "ReplicaSet/reader-2", Wave: 0},
			}}},
			want: "last known good v1; rolling out v2 (ReplicaSet/reader-1 done, ReplicaSet/reader-2 at wave 1)",
		},
		"a bad version": {
			state: datarollout.State{LKG: &datarollout.Promoted{Version: v1}, Bad: []datarollout.BadVersion{{Version: v2}}},
			want:  "last known good v1; bad: v2",
		},
	} {
		t.Run(name, func(t *testing.T) {
			if got := testWatch().describeState(tc.state); got != tc.want {
				t.Errorf("describeState = %q, want %q", got, tc.want)
			}
		})
	}
}
