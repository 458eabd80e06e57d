// apiclient - a strict Go client of the REST API h2k-job serve answers,
// built from the shapes of hyper2kvm-providers' daemon: times decode into
// time.Time (RFC 3339 strings only), durations into time.Duration (int64
// nanoseconds), counts and sizes into int/int64 (no fraction, no
// exponent).  It submits a job, polls it to the end and checks every
// answer on the way; any decoding error exits 1 naming the endpoint.
//
//	apiclient BASE_URL VM_PATH OUTPUT_DIR
//
// SPDX-License-Identifier: LGPL-3.0-or-later
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

type Health struct {
	Status    string    `json:"status"`
	Timestamp time.Time `json:"timestamp"`
}

type DaemonStatus struct {
	Version       string    `json:"version"`
	Uptime        string    `json:"uptime"`
	TotalJobs     int       `json:"total_jobs"`
	RunningJobs   int       `json:"running_jobs"`
	CompletedJobs int       `json:"completed_jobs"`
	FailedJobs    int       `json:"failed_jobs"`
	CancelledJobs int       `json:"cancelled_jobs"`
	Timestamp     time.Time `json:"timestamp"`
}

type ExportOptions struct {
	ParallelDownloads int  `json:"parallel_downloads"`
	RemoveCDROM       bool `json:"remove_cdrom"`
	Snapshot          bool `json:"snapshot"`
	Shutdown          bool `json:"shutdown"`
	PowerOff          bool `json:"power_off"`
	OVA               bool `json:"ova"`
}

type JobDefinition struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"`
	VMPath     string         `json:"vm_path"`
	OutputPath string         `json:"output_path"`
	OutputDir  string         `json:"output_dir"`
	Options    *ExportOptions `json:"options"`
	Format     string         `json:"format"`
	CreatedAt  time.Time      `json:"created_at"`
}

type JobProgress struct {
	Phase              string        `json:"phase"`
	CurrentFile        string        `json:"current_file"`
	CurrentStep        string        `json:"current_step"`
	FilesDownloaded    int           `json:"files_downloaded"`
	TotalFiles         int           `json:"total_files"`
	BytesDownloaded    int64         `json:"bytes_downloaded"`
	BytesTransferred   int64         `json:"bytes_transferred"`
	TotalBytes         int64         `json:"total_bytes"`
	PercentComplete    float64       `json:"percent_complete"`
	EstimatedRemaining time.Duration `json:"estimated_remaining"`
}

type JobResult struct {
	VMName    string        `json:"vm_name"`
	OutputDir string        `json:"output_dir"`
	OVFPath   string        `json:"ovf_path"`
	Files     []string      `json:"files"`
	TotalSize int64         `json:"total_size"`
	Duration  time.Duration `json:"duration"`
	Success   bool          `json:"success"`
}

type Job struct {
	Definition  JobDefinition `json:"definition"`
	Status      string        `json:"status"`
	Progress    *JobProgress  `json:"progress"`
	Result      *JobResult    `json:"result"`
	Error       string        `json:"error"`
	StartedAt   *time.Time    `json:"started_at"`
	CompletedAt *time.Time    `json:"completed_at"`
	UpdatedAt   time.Time     `json:"updated_at"`
}

type SubmitResponse struct {
	JobIDs    []string  `json:"job_ids"`
	Accepted  int       `json:"accepted"`
	Rejected  int       `json:"rejected"`
	Errors    []string  `json:"errors"`
	Timestamp time.Time `json:"timestamp"`
}

type QueryResponse struct {
	Jobs      []Job     `json:"jobs"`
	Total     int       `json:"total"`
	Timestamp time.Time `json:"timestamp"`
}

type CancelResponse struct {
	Cancelled []string          `json:"cancelled"`
	Failed    []string          `json:"failed"`
	Errors    map[string]string `json:"errors"`
	Timestamp time.Time         `json:"timestamp"`
}

var base string

func fail(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "apiclient: "+f+"\n", a...)
	os.Exit(1)
}

// call sends body (nil: GET) and decodes a 200 answer into out strictly.
func call(method, path string, body any, out any) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		fail("%s %s: %v", method, path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fail("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		fail("%s %s: HTTP %d: %s", method, path, resp.StatusCode, data)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(out); err != nil {
		fail("%s %s: decoding %T: %v\n%s", method, path, out, err, data)
	}
	if dec.More() {
		fail("%s %s: text after the JSON value", method, path)
	}
}

func recent(what string, t time.Time) {
	if t.IsZero() || time.Since(t) > time.Hour || time.Until(t) > time.Minute {
		fail("%s: %v is not now", what, t)
	}
}

func main() {
	if len(os.Args) != 4 {
		fail("usage: apiclient BASE_URL VM_PATH OUTPUT_DIR")
	}
	base = os.Args[1]
	var h Health
	call("GET", "/health", nil, &h)
	if h.Status != "healthy" {
		fail("/health: status %q", h.Status)
	}
	recent("/health timestamp", h.Timestamp)
	var st DaemonStatus
	call("GET", "/status", nil, &st)
	if _, err := time.ParseDuration(st.Uptime); err != nil {
		fail("/status: uptime %q: %v", st.Uptime, err)
	}
	var sub SubmitResponse
	call("POST", "/jobs/submit", map[string]any{
		"name": "go-client", "vm_path": os.Args[2], "output_path": os.Args[3],
		"options": map[string]any{"parallel_downloads": 2, "remove_cdrom": true},
	}, &sub)
	if sub.Accepted != 1 || len(sub.JobIDs) != 1 {
		fail("/jobs/submit: %+v", sub)
	}
	id := sub.JobIDs[0]
	var bad SubmitResponse
	call("POST", "/jobs/submit", map[string]any{"vm_path": 3}, &bad)
	if bad.Rejected != 1 || len(bad.Errors) != 1 {
		fail("/jobs/submit of a bad job: %+v", bad)
	}
	deadline := time.Now().Add(60 * time.Second)
	var job Job
	for {
		var q QueryResponse
		call("POST", "/jobs/query", map[string]any{"job_ids": []string{id}}, &q)
		if q.Total != 1 || len(q.Jobs) != 1 {
			fail("/jobs/query: total %d", q.Total)
		}
		job = q.Jobs[0]
		if job.Status == "completed" || job.Status == "failed" {
			break
		}
		if time.Now().After(deadline) {
			fail("job %s still %s after 60 s", id, job.Status)
		}
		var p JobProgress
		call("GET", "/jobs/progress/"+id, nil, &p)
		time.Sleep(200 * time.Millisecond)
	}
	if job.Status != "completed" {
		fail("job %s %s: %s", id, job.Status, job.Error)
	}
	r := job.Result
	if r == nil || !r.Success || r.OVFPath == "" || len(r.Files) == 0 ||
		r.TotalSize <= 0 || r.Duration < 0 || job.CompletedAt == nil {
		fail("job %s: result %+v", id, r)
	}
	if job.Definition.ID != id || job.Definition.Options == nil ||
		job.Definition.Options.ParallelDownloads != 2 {
		fail("job %s: definition %+v", id, job.Definition)
	}
	recent("created_at", job.Definition.CreatedAt)
	var one Job
	call("GET", "/jobs/"+id, nil, &one)
	var all QueryResponse
	call("POST", "/jobs/query", map[string]any{"all": true}, &all)
	call("GET", "/jobs/query?all=true&limit=5", nil, &all)
	var c CancelResponse
	call("POST", "/jobs/cancel", map[string]any{"job_ids": []string{id, "no-such-job"}}, &c)
	if len(c.Failed) != 2 || c.Errors["no-such-job"] == "" {
		fail("/jobs/cancel: %+v", c)
	}
	call("GET", "/status", nil, &st)
	fmt.Printf("ok %s %s %d bytes in %v\n", id, r.OVFPath, r.TotalSize, r.Duration)
}
