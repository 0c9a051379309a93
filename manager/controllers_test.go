package manager

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRepositoryTokenGoesOnlyToTrustedHosts(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := (ControllerOptions{DataRepositoryTokenFile: file}).repositoryToken(); got != nil {
		t.Fatalf("a token without trusted hosts must not be sent anywhere")
	}
	token := ControllerOptions{DataRepositoryTokenFile: file, DataRepositoryTokenHosts: []string{"repo.team-a.svc"}}.repositoryToken()
	for url, want := range map[string]string{
		"http://repo.team-a.svc:8080":       "s3cret",
		"https://repo.team-a.svc/base":      "s3cret",
		"http://evil.example:8080":          "",
		"http://repo.team-a.svc.evil:8080":  "",
		"http://user@repo.team-a.svc.x:1/p": "",
		"::bad":                             "",
	} {
		if got := token(url); got != want {
			t.Errorf("token(%q) = %q, want %q", url, got, want)
		}
	}
	// A rotated Secret takes effect without a restart.
	if err := os.WriteFile(file, []byte("n3w"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := token("http://repo.team-a.svc:8080"); got != "n3w" {
		t.Errorf("after rotation: %q", got)
	}
}
