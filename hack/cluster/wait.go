package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// waitFor polls check every 200ms until it succeeds, the timeout passes, or
// one of the watched processes exits (then the error quotes its log).
func waitFor(ctx context.Context, log logr.Logger, j *journal, what string, timeout time.Duration, check func(context.Context) error) error {
	log.Info("waiting", "for", what)
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if last = check(ctx); last == nil {
			log.Info("ready", "what", what, "after", time.Since(start).Round(10*time.Millisecond).String())
			return nil
		}
		if dead := deadProcess(j); dead != "" {
			return fmt.Errorf("%s exited while waiting for %s; last lines of its log:\n%s", dead, what,
				lastLines(readFile(j.Config.path("logs", dead+".log")), 20))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last check: %v)", what, ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// deadProcess names the first journaled daemon that no longer runs.
func deadProcess(j *journal) string {
	for _, p := range j.Processes {
		if !alive(p) {
			return p.Name
		}
	}
	return ""
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// httpGetOK checks that url answers 200, with the cluster CA and, when
// given, the admin client certificate.
func httpGetOK(ctx context.Context, c config, url string, clientCert bool) error {
	tlsConfig := &tls.Config{}
	if ca, err := os.ReadFile(c.path("pki", "ca.crt")); err == nil {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca)
		tlsConfig.RootCAs = pool
	}
	if clientCert {
		cert, err := tls.LoadX509KeyPair(filepath.Join(c.path("pki"), "admin.crt"), filepath.Join(c.path("pki"), "admin.key"))
		if err != nil {
			return fmt.Errorf("loading the admin certificate: %w", err)
		}
		tlsConfig.Certificates = []tls.Certificate{cert}
	}
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

func clientset(c config) (*kubernetes.Clientset, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig())
	if err != nil {
		return nil, fmt.Errorf("reading the admin kubeconfig: %w", err)
	}
	return kubernetes.NewForConfig(rc)
}

func nodeReady(cs kubernetes.Interface) func(context.Context) error {
	return func(ctx context.Context) error {
		n, err := cs.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				if cond.Status == corev1.ConditionTrue {
					return nil
				}
				return fmt.Errorf("node %s: %s", nodeName, cond.Message)
			}
		}
		return errors.New("node has no Ready condition yet")
	}
}

// podsReady checks that the pods matching selector in ns are all Ready.
func podsReady(cs kubernetes.Interface, ns, selector string) func(context.Context) error {
	return func(ctx context.Context) error {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return err
		}
		if len(pods.Items) == 0 {
			return fmt.Errorf("no pod matches %s yet", selector)
		}
		for _, p := range pods.Items {
			if !isReady(&p) {
				return fmt.Errorf("pod %s/%s is %s", ns, p.Name, p.Status.Phase)
			}
		}
		return nil
	}
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func serviceAccountExists(cs kubernetes.Interface, ns, name string) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, name, metav1.GetOptions{})
		return err
	}
}
