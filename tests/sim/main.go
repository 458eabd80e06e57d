// SPDX-License-Identifier: LGPL-3.0-or-later

// h2k-sim: the vSphere test rig of h2k.  It is govmomi's simulator (vcsim) at
// the version pinned in go.mod, served over TLS on 127.0.0.1 with a fresh
// self-signed certificate, plus the two methods vcsim lacks and an export
// needs (VirtualMachine.ExportVm, OvfManager.CreateDescriptor), the lease
// timeout vSphere documents, and knobs for tests.  See README.md.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
)

const prog = "h2k-sim"

type faultFlags []*simulator.FaultInjectionRule

func (f *faultFlags) String() string { return "" }

// Set parses METHOD:FAULT[:COUNT].  FAULT is a vim25 fault type name
// (InvalidLogin, NotAuthenticated, TaskInProgress, ...); COUNT limits how many
// calls get it (default: all).
func (f *faultFlags) Set(s string) error {
	p := strings.Split(s, ":")
	if len(p) < 2 || len(p) > 3 || p[0] == "" || p[1] == "" {
		return fmt.Errorf("want METHOD:FAULT[:COUNT], got %q", s)
	}
	rule := &simulator.FaultInjectionRule{
		MethodName:  p[0],
		ObjectType:  "*",
		ObjectName:  "*",
		Probability: 1,
		Enabled:     true,
		Message:     fmt.Sprintf("%s: injected %s", prog, p[1]),
	}
	if len(p) == 3 {
		n, err := strconv.Atoi(p[2])
		if err != nil || n < 0 {
			return fmt.Errorf("bad COUNT in %q", s)
		}
		rule.MaxCount = n
	}
	// vcsim's own fault types fill in the fields these faults carry.
	known := map[string]simulator.FaultType{
		"NotAuthenticated":      simulator.FaultTypeNotAuthenticated,
		"NoPermission":          simulator.FaultTypeNoPermission,
		"InvalidArgument":       simulator.FaultTypeInvalidArgument,
		"MethodNotFound":        simulator.FaultTypeMethodNotFound,
		"ManagedObjectNotFound": simulator.FaultTypeManagedObjectNotFound,
		"InvalidState":          simulator.FaultTypeInvalidState,
		"ResourceInUse":         simulator.FaultTypeResourceInUse,
		"SystemError":           simulator.FaultTypeGeneric,
	}
	if ft, ok := known[p[1]]; ok {
		rule.FaultType = ft
	} else {
		t, ok := types.TypeFunc()(p[1])
		if !ok {
			return fmt.Errorf("unknown fault type %q", p[1])
		}
		v, ok := reflect.New(t).Interface().(types.BaseMethodFault)
		if !ok {
			return fmt.Errorf("%q is not a fault type", p[1])
		}
		rule.FaultType = simulator.FaultTypeCustom
		rule.Fault = v
	}
	*f = append(*f, rule)
	return nil
}

// shellQuote quotes for a POSIX shell: the env file is sourced.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}} {
		if strings.HasSuffix(s, u.suf) {
			s, mult = strings.TrimSuffix(s, u.suf), u.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

func main() {
	log.SetPrefix(prog + ": ")
	log.SetFlags(0)
	// Errors are one line; the flag list only on -h.
	fs := flag.NewFlagSet(prog, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var (
		listen       = fs.String("listen", "127.0.0.1:0", "address to listen on (port 0: any free port)")
		envFile      = fs.String("env", "", "when ready, write SIM_* variables to this `file` (atomically)")
		esx          = fs.Bool("esx", false, "model a standalone ESXi host (HostAgent) instead of vCenter: one host, -vm VMs (-dc, -cluster, -host, -standalone, -pool, -folder do not apply); lease URLs use host \"*\"")
		ndc          = fs.Int("dc", 1, "datacenters")
		ncluster     = fs.Int("cluster", 1, "clusters per datacenter")
		nhost        = fs.Int("host", 3, "hosts per cluster")
		nstandalone  = fs.Int("standalone", 1, "standalone hosts per datacenter")
		nvm          = fs.Int("vm", 2, "VMs per standalone host and per cluster (per resource pool with -pool)")
		npool        = fs.Int("pool", 0, "resource pools per cluster (VMs go into each)")
		nfolder      = fs.Int("folder", 0, "datacenters (and their VM/host/network/datastore folders) placed in a folder")
		nds          = fs.Int("ds", 1, "local datastores per datacenter")
		username     = fs.String("username", "user", "user name Login accepts")
		password     = fs.String("password", "pass", "password Login accepts")
		ndisks       = fs.Int("disks", 0, "disks added to every VM, besides its default one")
		diskSizeS    = fs.String("disk-size", "0", "bytes written to every VM disk file (suffix K/M/G; 0: leave vcsim's files as they are)")
		diskCapS     = fs.String("disk-capacity", "", "capacity of every VM disk (default: -disk-size, else vcsim's 10G)")
		diskFill     = fs.String("disk-fill", "random", "disk contents with -disk-size: zero|random|pattern|mix[:R:P:Z] (mix: extents of 4 KiB..2 MiB, random, repeated or holes in weights R:P:Z, default 2:1:1)")
		seed         = fs.Int64("seed", 1, "seed of -disk-fill random and mix (contents depend on seed, VM name, disk index) and of -nfc-cut-random")
		power        = fs.String("power", "on", "VM power state at start: on|off|mixed (mixed: VMs named *_VM<even> on, others off)")
		sessTimeout  = fs.Duration("session-timeout", 30*time.Minute, "idle time after which vcsim drops a session (checked every timeout, so drop happens within 2x)")
		leaseTimeout = fs.Int("lease-timeout", 300, "export lease timeout in `seconds`: no HttpNfcLeaseProgress for that long puts the lease in error")
		leaseInit    = fs.Duration("lease-init", 100*time.Millisecond, "time an ExportVm lease stays initializing before it turns ready")
		nfcBPS       = fs.Int64("nfc-bps", 0, "throttle NFC download bodies to this many bytes/s (0: no limit)")
		nfcStream    = fs.Bool("nfc-stream", false, "serve export disks' raw bytes as a stream: no Content-Length, no ranges, fileSize 0")
		streamVMDK   = fs.Bool("stream-vmdk", false, "serve export disks as ESXi does: a streamOptimized VMDK encoded on the fly (chunked, Range ignored, fileSize absent)")
		streamCache  = fs.Bool("stream-cache", false, "with -stream-vmdk: encode every disk's stream once, before ready, into the rig's temporary directory, and serve those bytes (for benchmarks: the rig's deflate then costs no CPU during a transfer)")
		nfcCut       = fs.String("nfc-cut", "", "`BYTES[:COUNT]`: cut the first COUNT NFC downloads (default all) after BYTES body bytes")
		nfcCutRandom = fs.Int("nfc-cut-random", 0, "cut the first `N` NFC downloads at a random offset of their body (drawn from -seed)")
		maxLife      = fs.Duration("max-life", 30*time.Minute, "exit after this long, so a forgotten rig dies")
		trace        = fs.Bool("trace", false, "log SOAP traffic to stderr")
		faults       faultFlags
	)
	fs.Var(&faults, "fault", "`METHOD:FAULT[:COUNT]`: answer METHOD (or * for all) with vim25 fault FAULT, COUNT times (default always); repeatable")
	if err := fs.Parse(os.Args[1:]); errors.Is(err, flag.ErrHelp) {
		fmt.Printf("usage: %s [flags]\n\nvcsim over TLS on 127.0.0.1 plus ExportVm, OvfManager.CreateDescriptor and\nthe lease timeout; see tests/sim/README.md.\n\nflags:\n", prog)
		fs.SetOutput(os.Stdout)
		fs.PrintDefaults()
		os.Exit(0)
	} else if err != nil {
		log.Printf("%v (-h lists the flags)", err)
		os.Exit(2)
	}
	if fs.NArg() > 0 {
		log.Printf("unexpected argument %q", fs.Arg(0))
		os.Exit(2)
	}
	usage := func(format string, a ...any) {
		log.Printf(format, a...)
		os.Exit(2)
	}
	diskSize, err := parseSize(*diskSizeS)
	if err != nil {
		usage("-disk-size: %v", err)
	}
	var diskCap int64
	if *diskCapS != "" {
		if diskCap, err = parseSize(*diskCapS); err != nil || diskCap == 0 {
			usage("-disk-capacity: bad size %q", *diskCapS)
		}
	}
	mix, err := parseMix(*diskFill)
	if err != nil {
		usage("-disk-fill: %v", err)
	}
	if *streamVMDK && *nfcStream {
		usage("-stream-vmdk and -nfc-stream: choose one")
	}
	if *streamCache && !*streamVMDK {
		usage("-stream-cache needs -stream-vmdk")
	}
	if *nfcCutRandom < 0 {
		usage("-nfc-cut-random: must not be negative")
	}
	cuts := &cutter{at: -1, rndLeft: *nfcCutRandom,
		rng: rand.New(rand.NewPCG(uint64(*seed), 0x68326b2d637574))}
	if *nfcCut != "" {
		at, count, ok := strings.Cut(*nfcCut, ":")
		n, err := parseSize(at)
		if err != nil {
			usage("-nfc-cut: bad BYTES in %q", *nfcCut)
		}
		cuts.at, cuts.atLeft = n, -1
		if ok {
			c, err := strconv.Atoi(count)
			if err != nil || c <= 0 {
				usage("-nfc-cut: bad COUNT in %q", *nfcCut)
			}
			cuts.atLeft = c
		}
	}
	switch *power {
	case "on", "off", "mixed":
	default:
		usage("-power: want on, off or mixed, got %q", *power)
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"dc", *ndc}, {"cluster", *ncluster}, {"host", *nhost}, {"standalone", *nstandalone},
		{"vm", *nvm}, {"pool", *npool}, {"folder", *nfolder}, {"ds", *nds}, {"disks", *ndisks}} {
		if n.v < 0 {
			usage("-%s: must not be negative", n.name)
		}
	}
	if *leaseTimeout <= 0 {
		usage("-lease-timeout: must be positive")
	}
	if *sessTimeout <= 0 {
		usage("-session-timeout: must be positive")
	}
	if *username == "" || *password == "" {
		usage("-username and -password must not be empty")
	}
	simulator.Trace = *trace
	// A closed stdout (the reader of the URL line went away) must not kill
	// the rig before it removes its temporary directory.
	signal.Ignore(syscall.SIGPIPE)

	work, err := os.MkdirTemp("", prog+"-")
	if err != nil {
		log.Fatalf("temporary directory: %v", err)
	}
	// vcsim puts its datastores under os.TempDir(): inside work, so one
	// RemoveAll cleans everything.
	os.Setenv("TMPDIR", work)
	fail := func(format string, a ...any) {
		log.Printf(format, a...)
		os.RemoveAll(work)
		os.Exit(1)
	}

	var m *simulator.Model
	if *esx {
		m = simulator.ESX()
	} else {
		m = simulator.VPX()
		m.Datacenter = *ndc
		m.Cluster = *ncluster
		m.ClusterHost = *nhost
		m.Host = *nstandalone
		m.Pool = *npool
		m.Folder = *nfolder
	}
	m.Datastore = *nds
	m.Autostart = *power == "on"
	total := *nvm
	if !*esx {
		total = *ndc * (*nstandalone + *ncluster*max(*npool, 1)) * *nvm
	}
	parallel := total > parallelThreshold
	m.Machine = *nvm
	if parallel {
		m.Machine = 0
	}
	start := time.Now()
	if err := m.Create(); err != nil {
		fail("creating the inventory: %v", err)
	}

	ctx := context.Background()
	c, err := vim25.NewClient(ctx, m.Service)
	if err != nil {
		fail("in-process client: %v", err)
	}
	if parallel {
		if err := createMachines(ctx, c, m, *esx, *npool, *nvm, m.Autostart, 8); err != nil {
			fail("creating VMs: %v", err)
		}
	}
	fixCdroms(m)
	capacity := diskCap
	if capacity == 0 {
		capacity = diskSize
	}
	if *ndisks > 0 {
		extraCap := capacity
		if extraCap == 0 {
			extraCap = 10 << 30
		}
		if err := addDisks(ctx, c, m, *ndisks, extraCap); err != nil {
			fail("%v", err)
		}
	}
	if capacity > 0 {
		setCapacity(m, capacity)
	}
	if diskSize > 0 {
		o := diskOpts{size: diskSize, fill: *diskFill, seed: *seed, mix: mix}
		if err := fillDisks(ctx, c, m, o); err != nil {
			fail("filling disks: %v", err)
		}
	}
	if *power == "mixed" {
		if err := powerMixed(ctx, c, m); err != nil {
			fail("%v", err)
		}
	}

	sctx := m.Service.Context
	om := sctx.Map.OptionManager()
	om.UpdateOptions(&types.UpdateOptions{ChangedValue: []types.BaseOptionValue{
		&types.OptionValue{Key: "config.vmacore.soap.sessionTimeout", Value: sessTimeout.String()},
	}})
	dsdir := ""
	for _, s := range om.Setting {
		if o := s.GetOptionValue(); o.Key == "vcsim.home" {
			dsdir = fmt.Sprint(o.Value)
		}
	}
	for _, r := range faults {
		m.Service.AddFaultRule(r)
	}

	cert, certPEM, err := newCert()
	if err != nil {
		fail("certificate: %v", err)
	}
	der := cert.Certificate[0]
	r := &rig{
		leaseTimeout: time.Duration(*leaseTimeout) * time.Second,
		leaseInit:    *leaseInit,
		nfcBPS:       *nfcBPS,
		nfcStream:    *nfcStream,
		streamVMDK:   *streamVMDK,
		cuts:         cuts,
		sha1Thumb:    thumbprintSHA1(der),
	}
	sctx.Map.Handler = r.hook
	if *streamCache {
		r.streamCache = filepath.Join(work, "streams")
		if err := os.Mkdir(r.streamCache, 0o700); err != nil {
			fail("%v", err)
		}
		if err := r.warmStreams(sctx, allVMs(m)); err != nil {
			fail("encoding the disks' streams: %v", err)
		}
	}

	svc := m.Service
	svc.ServeMux = http.NewServeMux()
	svc.ServeMux.HandleFunc("GET /nfc/", r.serveNFCGet)
	svc.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	svc.Listen = &url.URL{Host: *listen, User: url.UserPassword(*username, *password)}
	srv := svc.NewServer()

	certFile := filepath.Join(work, "cert.pem")
	if err := writeFileAtomic(certFile, certPEM, 0o644); err != nil {
		fail("%s: %v", certFile, err)
	}
	u := *srv.URL
	u.User = nil
	vars := []struct{ k, v string }{
		{"SIM_URL", u.String()},
		{"SIM_HOST", u.Host},
		{"SIM_USER", *username},
		{"SIM_PASSWORD", *password},
		{"SIM_THUMBPRINT", thumbprintSHA256(der)},
		{"SIM_THUMBPRINT_SHA1", thumbprintSHA1(der)},
		{"SIM_CERT", certFile},
		{"SIM_DSDIR", dsdir},
		{"SIM_PID", strconv.Itoa(os.Getpid())},
	}
	var env strings.Builder
	var names []string
	for _, v := range vars {
		fmt.Fprintf(&env, "%s=%s\n", v.k, shellQuote(v.v))
		names = append(names, v.k)
	}
	fmt.Fprintf(&env, "export %s\n", strings.Join(names, " "))
	if *envFile != "" {
		if err := writeFileAtomic(*envFile, []byte(env.String()), 0o600); err != nil {
			srv.Close()
			fail("%s: %v", *envFile, err)
		}
	}
	fmt.Printf("SIM_URL=%s\nSIM_THUMBPRINT=%s\n", u.String(), thumbprintSHA256(der))
	log.Printf("ready in %.1fs: %d VMs, datastores under %s", time.Since(start).Seconds(),
		len(sctx.Map.All("VirtualMachine")), dsdir)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	select {
	case s := <-sig:
		log.Printf("%v: stopping", s)
	case <-time.After(*maxLife):
		log.Printf("-max-life %s reached: stopping", *maxLife)
	}
	srv.Close()
	m.Remove()
	os.RemoveAll(work)
}
