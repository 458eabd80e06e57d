// SPDX-License-Identifier: LGPL-3.0-or-later

// VirtualMachine.ExportVm and the export lease's life, added to vcsim.
//
// vcsim dispatches a SOAP call by looking the target object up in its
// registry and calling the Go method of the same name by reflection.  Before
// that lookup it asks Registry.Handler, which may substitute the object.  The
// rig uses that hook (no fork of vcsim): for ExportVm on a VirtualMachine it
// returns exportVM, which embeds vcsim's *VirtualMachine and adds the method
// (likewise ExportSnapshot and OvfManager.CreateDescriptor).  vcsim then
// prefers the session's view of the target, which falls back to the global
// object and would undo the substitution, so the hook also renames the
// call's target to a reference no registry holds; locking (by the wrapper's
// own reference), fault rules (by type and method name) are unaffected.
// Only the substituted call sees the wrapper: the registry keeps vcsim's
// objects, whose type the rest of vcsim asserts.
//
// The lease itself is vcsim's own HttpNfcLease, made by vcsim's own
// VirtualMachineSnapshot.ExportSnapshot run on a transient snapshot object
// that carries the VM's current configuration.  That registers the lease and
// its disk files with vcsim's NFC handler (ServeNFC), and
// HttpNfcLeaseProgress/Complete/Abort are vcsim's.  ExportVm then
// does what vCenter does and ExportSnapshot does not: the lease starts in
// state initializing and turns ready a moment later; info.deviceUrl lists the
// disks with vSphere's keys (/vm-N/<controller class><bus>:<unit>), target ids
// disk-N.vmdk, the host's SHA-1 thumbprint and the file size;
// totalDiskCapacityInKB and leaseTimeout are filled in.
//
// Lease timeout, as the vSphere API reference describes HttpNfcLeaseInfo.
// leaseTimeout: a lease that receives no HttpNfcLeaseProgress for that many
// seconds times out.  The rig then sets state=error with a Timedout fault,
// later Progress/Complete/Abort calls get a Timedout fault, its URLs answer
// 404 and a transfer in flight is cut.  This applies to leases from ExportVm
// and from vcsim's ExportSnapshot (whose info gets the -lease-timeout value);
// import leases are left to vcsim.
//
// NFC GET: the rig registers "GET /nfc/" on vcsim's mux, which takes
// precedence over vcsim's method-less "/nfc/" pattern.  For a lease the rig
// tracks, it answers with Content-Length, Range and If-Range support (ETag
// from size and mtime), unless -nfc-stream asks for vSphere's on-the-fly
// stream shape, in which case vcsim's ServeNFC answers (no length, no
// ranges), or -stream-vmdk asks for what ESXi really sends, a streamOptimized
// VMDK encoded from the disk's bytes (stream.go; chunked, no length, Range
// ignored).  Either way the body can be throttled (-nfc-bps), cut on purpose
// (-nfc-cut, -nfc-cut-random) and is cut when the lease ends.  Anything else
// (import leases' PUT/POST) goes to ServeNFC.
package main

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

type leaseState int

const (
	leaseActive leaseState = iota
	leaseExpired
	leaseDone
)

// leaseRec is the rig's view of one export lease: which files its URLs name,
// and its timeout clock.
type leaseRec struct {
	ref     types.ManagedObjectReference
	files   map[string]string // URL file name -> absolute path
	caps    map[string]int64  // URL file name -> disk capacity in bytes
	timeout time.Duration

	mu    sync.Mutex
	state leaseState
	timer *time.Timer
}

func (l *leaseRec) active() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state == leaseActive
}

func (l *leaseRec) getState() leaseState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state
}

// touch renews the lease (HttpNfcLeaseProgress).
func (l *leaseRec) touch() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state == leaseActive && l.timer != nil {
		l.timer.Reset(l.timeout)
	}
}

func (l *leaseRec) finish() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.timer != nil {
		l.timer.Stop()
	}
	if l.state == leaseActive {
		l.state = leaseDone
	}
}

type rig struct {
	leaseTimeout time.Duration
	leaseInit    time.Duration
	nfcBPS       int64
	nfcStream    bool
	streamVMDK   bool
	streamCache  string // -stream-cache: directory of encoded streams ("": encode per request)
	sha1Thumb    string
	cuts         *cutter

	leases sync.Map // lease moref value -> *leaseRec
}

// streams: the lease serves streams of unknown length, and says so as
// vSphere does (no fileSize; only the capacity is known).
func (r *rig) streams() bool { return r.nfcStream || r.streamVMDK }

// hook is installed as vcsim's Registry.Handler.  It runs before vcsim checks
// the session, so it only substitutes objects (the method still runs after
// that check) and only acts on leases when the caller's session holds them.
func (r *rig) hook(ctx *simulator.Context, m *simulator.Method) (mo.Reference, types.BaseMethodFault) {
	var sub mo.Reference
	switch m.This.Type {
	case "VirtualMachine":
		if m.Name == "ExportVm" {
			if vm, ok := ctx.Map.Get(m.This).(*simulator.VirtualMachine); ok {
				sub = &exportVM{VirtualMachine: vm, rig: r}
			}
		}
	case "VirtualMachineSnapshot":
		if m.Name == "ExportSnapshot" {
			if s, ok := ctx.Map.Get(m.This).(*simulator.VirtualMachineSnapshot); ok {
				sub = &exportSnapshot{VirtualMachineSnapshot: s, rig: r}
			}
		}
	case "OvfManager":
		if m.Name == "CreateDescriptor" {
			if o, ok := ctx.Map.Get(m.This).(*simulator.OvfManager); ok {
				sub = &ovfManager{OvfManager: o}
			}
		}
	case "HttpNfcLease":
		if ctx.Session == nil || ctx.Session.Get(m.This) == nil {
			return nil, nil
		}
		v, ok := r.leases.Load(m.This.Value)
		if !ok {
			return nil, nil
		}
		rec := v.(*leaseRec)
		if rec.getState() == leaseExpired {
			switch m.Name {
			case "HttpNfcLeaseProgress", "HttpNfcLeaseComplete", "HttpNfcLeaseAbort":
				if l, ok := ctx.Session.Get(m.This).(*simulator.HttpNfcLease); ok {
					sub = &expiredLease{HttpNfcLease: l}
				}
			}
			break
		}
		switch m.Name {
		case "HttpNfcLeaseGetManifest":
			if l, ok := ctx.Session.Get(m.This).(*simulator.HttpNfcLease); ok {
				sub = &manifestLease{HttpNfcLease: l, rec: rec, streamVMDK: r.streamVMDK}
			}
		case "HttpNfcLeaseProgress":
			rec.touch()
		case "HttpNfcLeaseComplete", "HttpNfcLeaseAbort":
			rec.finish()
			r.leases.Delete(m.This.Value)
		}
	}
	if sub != nil {
		// After this hook vcsim prefers the session's view of This, which
		// for a VM or a singleton falls back to the global object and would
		// undo the substitution.  A reference no registry holds keeps ours;
		// the type stays, so fault rules and locking (by the substitute's
		// own reference) are unchanged.
		m.This.Value += "#h2k-sim"
	}
	return sub, nil
}

// track starts the timeout clock of a ready lease.
func (r *rig) track(ctx *simulator.Context, lease *simulator.HttpNfcLease, files map[string]string, caps map[string]int64) {
	rec := &leaseRec{ref: lease.Self, files: files, caps: caps, timeout: r.leaseTimeout}
	// The request's Context ends with the request; the timer needs its own
	// (locks are held on behalf of a Context, by identity).
	c := *ctx
	rec.timer = time.AfterFunc(r.leaseTimeout, func() { r.expire(&c, lease, rec) })
	r.leases.Store(lease.Self.Value, rec)
}

func (r *rig) expire(ctx *simulator.Context, lease *simulator.HttpNfcLease, rec *leaseRec) {
	rec.mu.Lock()
	if rec.state != leaseActive {
		rec.mu.Unlock()
		return
	}
	rec.state = leaseExpired
	rec.mu.Unlock()

	msg := fmt.Sprintf("The operation timed out: lease %s received no progress for %s",
		lease.Self.Value, r.leaseTimeout)
	fault := &types.LocalizedMethodFault{Fault: &types.Timedout{}, LocalizedMessage: msg}
	ctx.WithLock(lease, func() {
		ctx.Update(lease, []types.PropertyChange{
			{Name: "state", Val: types.HttpNfcLeaseStateError},
			{Name: "error", Val: fault},
		})
	})
}

// expiredLease answers the calls that renew or end a lease with the fault
// the vSphere API reference lists for a lease that has timed out.
type expiredLease struct {
	*simulator.HttpNfcLease
}

func timedout(l *simulator.HttpNfcLease) *soap.Fault {
	return simulator.Fault(fmt.Sprintf("The operation timed out: lease %s has expired", l.Self.Value), &types.Timedout{})
}

func (l *expiredLease) HttpNfcLeaseProgress(ctx *simulator.Context, req *types.HttpNfcLeaseProgress) soap.HasFault {
	return &methods.HttpNfcLeaseProgressBody{Fault_: timedout(l.HttpNfcLease)}
}

func (l *expiredLease) HttpNfcLeaseComplete(ctx *simulator.Context, req *types.HttpNfcLeaseComplete) soap.HasFault {
	return &methods.HttpNfcLeaseCompleteBody{Fault_: timedout(l.HttpNfcLease)}
}

func (l *expiredLease) HttpNfcLeaseAbort(ctx *simulator.Context, req *types.HttpNfcLeaseAbort) soap.HasFault {
	return &methods.HttpNfcLeaseAbortBody{Fault_: timedout(l.HttpNfcLease)}
}

// manifestLease answers HttpNfcLeaseGetManifest for an export lease: the
// vSphere API describes it as the download manifest, SHA-1 and size of each
// file the lease serves, while vcsim's only lists files uploaded to an import
// lease (none here).
type manifestLease struct {
	*simulator.HttpNfcLease
	rec        *leaseRec
	streamVMDK bool
}

func (l *manifestLease) HttpNfcLeaseGetManifest(ctx *simulator.Context, req *types.HttpNfcLeaseGetManifest) soap.HasFault {
	body := new(methods.HttpNfcLeaseGetManifestBody)
	if l.Info == nil || l.State != types.HttpNfcLeaseStateReady {
		body.Fault_ = simulator.Fault("The lease is not ready", &types.InvalidState{})
		return body
	}
	entries := []types.HttpNfcLeaseManifestEntry{}
	for _, d := range l.Info.DeviceUrl {
		file, ok := l.rec.files[path.Base(d.Url)]
		if !ok {
			continue
		}
		h := sha1.New()
		var n int64
		var err error
		capacity := l.rec.caps[path.Base(d.Url)]
		if l.streamVMDK {
			// The manifest describes the data stream sent: the VMDK.
			n, err = encodeStreamVMDK(h, file, capacity)
		} else {
			var f *os.File
			if f, err = os.Open(file); err == nil {
				n, err = io.Copy(h, f)
				f.Close()
			}
		}
		if os.IsNotExist(err) {
			body.Fault_ = simulator.Fault(err.Error(), &types.FileNotFound{FileFault: types.FileFault{File: file}})
			return body
		} else if err != nil {
			body.Fault_ = simulator.Fault(err.Error(), &types.FileFault{File: file})
			return body
		}
		entries = append(entries, types.HttpNfcLeaseManifestEntry{
			Key:      d.Key,
			Sha1:     hex.EncodeToString(h.Sum(nil)),
			Size:     n,
			Disk:     d.Disk != nil && *d.Disk,
			Capacity: capacity,
		})
	}
	body.Res = &types.HttpNfcLeaseGetManifestResponse{Returnval: entries}
	return body
}

// serverURL is vcsim's own idea of its URL (option vcsim.server.url), with the
// host replaced by "*" on ESX as vSphere does (the client substitutes the host
// it connected to).
func serverURL(ctx *simulator.Context) *url.URL {
	var u *url.URL
	for _, s := range ctx.Map.OptionManager().Setting {
		o := s.GetOptionValue()
		if o.Key == "vcsim.server.url" {
			u, _ = url.Parse(fmt.Sprint(o.Value))
		}
	}
	if u == nil {
		u = &url.URL{Scheme: "https", Host: "127.0.0.1"}
	}
	if ctx.Map.IsESX() {
		u.Host = "*"
	}
	return u
}

// diskFile resolves a device's backing datastore path to a file on disk.
func diskFile(ctx *simulator.Context, vm *simulator.VirtualMachine, b types.BaseVirtualDeviceFileBackingInfo) (string, bool) {
	info := b.GetVirtualDeviceFileBackingInfo()
	var p object.DatastorePath
	if !p.FromString(info.FileName) {
		return "", false
	}
	var ds *simulator.Datastore
	if info.Datastore != nil {
		ds, _ = ctx.Map.Get(*info.Datastore).(*simulator.Datastore)
	}
	if ds == nil && vm.Runtime.Host != nil {
		if h, ok := ctx.Map.Get(*vm.Runtime.Host).(*simulator.HostSystem); ok {
			ds, _ = ctx.Map.FindByName(p.Datastore, h.Datastore).(*simulator.Datastore)
		}
	}
	if ds == nil {
		return "", false
	}
	return path.Join(ds.Summary.Url, p.Path), true
}

// leaseFiles maps the file names vcsim's ExportSnapshot puts in its URLs
// (base name of every file-backed device) to the files on disk.
func leaseFiles(ctx *simulator.Context, vm *simulator.VirtualMachine, devices []types.BaseVirtualDevice) map[string]string {
	files := make(map[string]string)
	for _, d := range devices {
		b, ok := d.GetVirtualDevice().Backing.(types.BaseVirtualDeviceFileBackingInfo)
		if !ok {
			continue
		}
		if f, ok := diskFile(ctx, vm, b); ok {
			files[path.Base(f)] = f
		}
	}
	return files
}

// leaseCaps maps the same names to each disk's capacity in bytes (what a
// streamOptimized VMDK of the disk declares).
func leaseCaps(ctx *simulator.Context, vm *simulator.VirtualMachine, devices []types.BaseVirtualDevice) map[string]int64 {
	caps := make(map[string]int64)
	for _, d := range devices {
		disk, ok := d.(*types.VirtualDisk)
		if !ok {
			continue
		}
		b, ok := disk.Backing.(types.BaseVirtualDeviceFileBackingInfo)
		if !ok {
			continue
		}
		if f, ok := diskFile(ctx, vm, b); ok {
			c := disk.CapacityInBytes
			if c == 0 {
				c = disk.CapacityInKB * 1024
			}
			caps[path.Base(f)] = c
		}
	}
	return caps
}

// deviceKey is the key vSphere gives a disk in an export lease and expects
// back as OvfFile.deviceId: the controller's class, its bus number, the
// disk's unit number (e.g. /vm-54/VirtualLsiLogicController0:0).
func deviceKey(devices object.VirtualDeviceList, owner string, d types.BaseVirtualDevice) string {
	vd := d.GetVirtualDevice()
	unit := int32(0)
	if vd.UnitNumber != nil {
		unit = *vd.UnitNumber
	}
	c := devices.FindByKey(vd.ControllerKey)
	if c == nil {
		return fmt.Sprintf("/%s/%s:%d", owner, devices.TypeName(d), vd.Key)
	}
	bus := int32(0)
	if bc, ok := c.(types.BaseVirtualController); ok {
		bus = bc.GetVirtualController().BusNumber
	}
	return fmt.Sprintf("/%s/%s%d:%d", owner, devices.TypeName(c), bus, unit)
}

type exportVM struct {
	*simulator.VirtualMachine
	rig *rig
}

func (v *exportVM) ExportVm(ctx *simulator.Context, req *types.ExportVm) soap.HasFault {
	body := new(methods.ExportVmBody)
	vm := v.VirtualMachine

	if state := vm.Runtime.PowerState; state != types.VirtualMachinePowerStatePoweredOff {
		// What vCenter answers: InvalidPowerState, requested poweredOff.
		body.Fault_ = simulator.Fault(
			fmt.Sprintf("The attempted operation cannot be performed in the current state (%s).", powerWord(state)),
			&types.InvalidPowerState{RequestedState: types.VirtualMachinePowerStatePoweredOff, ExistingState: state})
		return body
	}

	// vcsim's ExportSnapshot makes and registers the lease; a transient
	// snapshot object carries the VM's current configuration.
	snap := &simulator.VirtualMachineSnapshot{}
	snap.Vm = vm.Self
	snap.Config = *vm.Config
	res := snap.ExportSnapshot(ctx, &types.ExportSnapshot{This: vm.Self})
	if f := res.Fault(); f != nil {
		body.Fault_ = f
		return body
	}
	ref := res.(*methods.ExportSnapshotBody).Res.Returnval
	lease, ok := ctx.Session.Get(ref).(*simulator.HttpNfcLease)
	if !ok {
		body.Fault_ = simulator.Fault("lease vanished", &types.SystemErrorFault{Reason: "lease vanished"})
		return body
	}

	devices := object.VirtualDeviceList(vm.Config.Hardware.Device)
	files := leaseFiles(ctx, vm, devices)
	base := serverURL(ctx)
	var urls []types.HttpNfcLeaseDeviceUrl
	var capKB int64
	n := 0
	for _, d := range devices {
		disk, ok := d.(*types.VirtualDisk)
		if !ok {
			continue
		}
		b, ok := disk.Backing.(types.BaseVirtualDeviceFileBackingInfo)
		if !ok {
			continue
		}
		f, ok := diskFile(ctx, vm, b)
		if !ok {
			continue
		}
		var size int64
		if !v.rig.streams() {
			if st, err := os.Stat(f); err == nil {
				size = st.Size()
			}
		}
		u := *base
		u.Path = "/nfc/" + path.Join(lease.Self.Value, path.Base(f))
		capKB += disk.CapacityInKB
		urls = append(urls, types.HttpNfcLeaseDeviceUrl{
			Key:           deviceKey(devices, vm.Self.Value, d),
			ImportKey:     deviceKey(devices, vm.Name, d),
			Url:           u.String(),
			SslThumbprint: v.rig.sha1Thumb,
			Disk:          types.NewBool(true),
			TargetId:      fmt.Sprintf("disk-%d.vmdk", n),
			FileSize:      size,
		})
		n++
	}
	info := &types.HttpNfcLeaseInfo{
		Lease:                 lease.Self,
		Entity:                vm.Self,
		DeviceUrl:             urls,
		TotalDiskCapacityInKB: capKB,
		LeaseTimeout:          int32(v.rig.leaseTimeout / time.Second),
	}

	// No client knows the lease yet: set it back to initializing directly.
	lease.State = types.HttpNfcLeaseStateInitializing
	lease.InitializeProgress = 0
	lease.Info = nil

	c := *ctx
	go func() {
		time.Sleep(v.rig.leaseInit)
		c.WithLock(lease, func() {
			c.Update(lease, []types.PropertyChange{
				{Name: "initializeProgress", Val: int32(100)},
				{Name: "info", Val: info},
				{Name: "state", Val: types.HttpNfcLeaseStateReady},
			})
		})
		v.rig.track(&c, lease, files, leaseCaps(&c, vm, devices))
	}()

	body.Res = &types.ExportVmResponse{Returnval: lease.Self}
	return body
}

func powerWord(s types.VirtualMachinePowerState) string {
	switch s {
	case types.VirtualMachinePowerStatePoweredOn:
		return "Powered on"
	case types.VirtualMachinePowerStateSuspended:
		return "Suspended"
	}
	return string(s)
}

// exportSnapshot runs vcsim's ExportSnapshot unchanged, then puts the lease
// under the rig's timeout and fills in what vcsim leaves at 300 or 0 and
// ExportVm sets: info.leaseTimeout, totalDiskCapacityInKB and each device's
// fileSize (without which govc writes the total capacity as every file's
// size into its descriptor).
type exportSnapshot struct {
	*simulator.VirtualMachineSnapshot
	rig *rig
}

func (s *exportSnapshot) ExportSnapshot(ctx *simulator.Context, req *types.ExportSnapshot) soap.HasFault {
	res := s.VirtualMachineSnapshot.ExportSnapshot(ctx, req)
	if res.Fault() != nil {
		return res
	}
	ref := res.(*methods.ExportSnapshotBody).Res.Returnval
	lease, ok := ctx.Session.Get(ref).(*simulator.HttpNfcLease)
	vm, ok2 := ctx.Map.Get(s.Vm).(*simulator.VirtualMachine)
	if !ok || !ok2 {
		return res
	}
	devices := s.Config.Hardware.Device
	var capKB int64
	for _, d := range devices {
		if disk, ok := d.(*types.VirtualDisk); ok {
			capKB += disk.CapacityInKB
		}
	}
	files := leaseFiles(ctx, vm, devices)
	ctx.WithLock(lease, func() {
		if lease.Info != nil {
			info := *lease.Info
			info.LeaseTimeout = int32(s.rig.leaseTimeout / time.Second)
			info.TotalDiskCapacityInKB = capKB
			info.DeviceUrl = append([]types.HttpNfcLeaseDeviceUrl(nil), info.DeviceUrl...)
			for i := range info.DeviceUrl {
				d := &info.DeviceUrl[i]
				if f, ok := files[path.Base(d.Url)]; ok && !s.rig.streams() {
					if st, err := os.Stat(f); err == nil {
						d.FileSize = st.Size()
					}
				}
			}
			ctx.Update(lease, []types.PropertyChange{{Name: "info", Val: &info}})
		}
	})
	s.rig.track(ctx, lease, files, leaseCaps(ctx, vm, devices))
	return res
}

// nfcWriter throttles a response body to bps bytes per second (when set) and
// cuts the connection when the lease stops being active, as a server does
// when the lease behind a transfer times out or is aborted.
type nfcWriter struct {
	http.ResponseWriter
	rec   *leaseRec
	bps   int64
	start time.Time
	n     int64
	cutAt int64 // cut the connection after this many body bytes (-1: never)
}

func (w *nfcWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *nfcWriter) Write(p []byte) (int, error) {
	chunk := 256 << 10
	if w.bps > 0 {
		// About 20 writes a second, so a cut or the rate is never far off.
		chunk = int(max(w.bps/20, 512))
	}
	total := 0
	for len(p) > 0 {
		if w.rec != nil && !w.rec.active() {
			panic(http.ErrAbortHandler)
		}
		k := min(len(p), chunk)
		if w.cutAt >= 0 && w.n+int64(k) >= w.cutAt {
			// Deliver exactly cutAt bytes, then drop the connection
			// without ending the body, as a broken NFC transfer does.
			if k = int(w.cutAt - w.n); k > 0 {
				w.ResponseWriter.Write(p[:k])
			}
			if f, ok := w.ResponseWriter.(http.Flusher); ok {
				f.Flush()
			}
			panic(http.ErrAbortHandler)
		}
		m, err := w.ResponseWriter.Write(p[:k])
		total += m
		w.n += int64(m)
		if err != nil {
			return total, err
		}
		p = p[m:]
		if w.bps > 0 {
			due := w.start.Add(time.Duration(float64(w.n) / float64(w.bps) * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
	}
	return total, nil
}

// serveNFCGet answers GET/HEAD under /nfc/ (see the header comment).
func (r *rig) serveNFCGet(w http.ResponseWriter, req *http.Request) {
	p := strings.Split(req.URL.Path, "/")
	if len(p) < 4 {
		http.NotFound(w, req)
		return
	}
	id, name := p[len(p)-2], p[len(p)-1]
	var rec *leaseRec
	if v, ok := r.leases.Load(id); ok {
		rec = v.(*leaseRec)
	}
	nw := &nfcWriter{ResponseWriter: w, rec: rec, bps: r.nfcBPS, start: time.Now(), cutAt: -1}
	if rec != nil && r.streamVMDK && rec.caps[name] > 0 {
		r.serveStreamVMDK(nw, req, rec, id, name)
		return
	}
	if req.Method == http.MethodGet && rec != nil {
		if file, ok := rec.files[name]; ok {
			nw.cutAt = r.cuts.next(name, func() int64 {
				if st, err := os.Stat(file); err == nil {
					return st.Size()
				}
				return 0
			})
		}
	}
	if rec == nil || r.nfcStream {
		if rec != nil && !rec.active() {
			http.Error(w, "lease is no longer active: "+id, http.StatusNotFound)
			return
		}
		simulator.ServeNFC(nw, req)
		return
	}
	if !rec.active() {
		http.Error(w, "lease is no longer active: "+id, http.StatusNotFound)
		return
	}
	file, ok := rec.files[name]
	if !ok {
		http.NotFound(w, req)
		return
	}
	f, err := os.Open(file)
	if err != nil {
		http.NotFound(w, req)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", fmt.Sprintf(`"%x-%x"`, st.Size(), st.ModTime().UnixNano()))
	http.ServeContent(nw, req, name, st.ModTime(), f)
}

// serveStreamVMDK answers the download of a disk in -stream-vmdk mode: 200
// to every request (Range ignored, as ESXi does), chunked, no
// Content-Length, the disk encoded as it is sent.  Other files (NVRAM) are
// served as they are.
func (r *rig) serveStreamVMDK(w *nfcWriter, req *http.Request, rec *leaseRec, id, name string) {
	if !rec.active() {
		http.Error(w, "lease is no longer active: "+id, http.StatusNotFound)
		return
	}
	file, ok := rec.files[name]
	capacity := rec.caps[name]
	if !ok {
		http.NotFound(w, req)
		return
	}
	if _, err := os.Stat(file); err != nil {
		http.NotFound(w, req)
		return
	}
	w.Header().Set("Content-Type", streamVMDKType)
	if req.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	var cached *os.File
	if r.streamCache != "" {
		c, err := r.cachedStream(file, capacity)
		if err != nil {
			log.Printf("stream %s: %v", name, err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if cached, err = os.Open(c); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer cached.Close()
	}
	w.cutAt = r.cuts.next(name, func() int64 { return streamLength(file, capacity) })
	w.WriteHeader(http.StatusOK)
	if cached != nil {
		if _, err := io.Copy(w, cached); err != nil {
			panic(http.ErrAbortHandler)
		}
		return
	}
	if _, err := encodeStreamVMDK(w, file, capacity); err != nil {
		// Headers are out: the only way to say it failed is to cut.
		log.Printf("stream %s: %v", name, err)
		panic(http.ErrAbortHandler)
	}
}

// cutter decides which downloads -nfc-cut and -nfc-cut-random cut, and
// where.  Random offsets come from -seed, so a run is reproducible.
type cutter struct {
	mu      sync.Mutex
	at      int64 // -nfc-cut BYTES (-1: none)
	atLeft  int   // downloads still to cut at BYTES (-1: all)
	rndLeft int   // downloads still to cut at a random offset
	rng     *rand.Rand
	seen    int
}

// next returns where to cut the body of the download of name (-1: not at
// all); length gives the body's length, asked only for a random cut.
func (c *cutter) next(name string, length func() int64) int64 {
	if c == nil {
		return -1
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen++
	at := int64(-1)
	switch {
	case c.rndLeft > 0:
		c.rndLeft--
		if n := length(); n > 1 {
			at = 1 + c.rng.Int64N(n-1)
		}
	case c.at >= 0 && c.atLeft != 0:
		if c.atLeft > 0 {
			c.atLeft--
		}
		at = c.at
	}
	if at >= 0 {
		log.Printf("download %d (%s): cut after %d bytes", c.seen, name, at)
	}
	return at
}

// streamLength is the length of a disk's stream, encoded once per file
// version (the encoding is a function of the bytes and the capacity).
var streamLengths sync.Map

func streamLength(file string, capacity int64) int64 {
	st, err := os.Stat(file)
	if err != nil {
		return 0
	}
	if v, ok := streamFiles.Load(fmt.Sprintf("%s\x00%d\x00%d\x00%d", file, capacity, st.Size(), st.ModTime().UnixNano())); ok {
		if e := v.(*cacheEntry); e.err == nil && e.path != "" {
			if cs, err := os.Stat(e.path); err == nil {
				return cs.Size()
			}
		}
	}
	key := fmt.Sprintf("%s\x00%d\x00%d\x00%d", file, capacity, st.Size(), st.ModTime().UnixNano())
	if v, ok := streamLengths.Load(key); ok {
		return v.(int64)
	}
	n, err := encodeStreamVMDK(io.Discard, file, capacity)
	if err != nil {
		return 0
	}
	streamLengths.Store(key, n)
	return n
}

// cachedStream returns a file holding the stream of a disk (-stream-cache),
// encoding it on first use.  Concurrent first uses wait for one encoding.
// The cache is keyed like streamLength, so a disk changed under the rig is
// encoded again.
type cacheEntry struct {
	once sync.Once
	path string
	err  error
}

var streamFiles sync.Map

func (r *rig) cachedStream(file string, capacity int64) (string, error) {
	st, err := os.Stat(file)
	if err != nil {
		return "", err
	}
	key := fmt.Sprintf("%s\x00%d\x00%d\x00%d", file, capacity, st.Size(), st.ModTime().UnixNano())
	v, _ := streamFiles.LoadOrStore(key, &cacheEntry{})
	e := v.(*cacheEntry)
	e.once.Do(func() {
		sum := sha1.Sum([]byte(key))
		e.path = path.Join(r.streamCache, hex.EncodeToString(sum[:])+".vmdk")
		tmp := e.path + ".part"
		f, err := os.Create(tmp)
		if err != nil {
			e.err = err
			return
		}
		_, err = encodeStreamVMDK(f, file, capacity)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp, e.path)
		}
		e.err = err
	})
	return e.path, e.err
}

// warmStreams encodes the stream of every disk of every VM into the cache
// before the rig reports ready, two at a time.
func (r *rig) warmStreams(ctx *simulator.Context, vms []*simulator.VirtualMachine) error {
	type disk struct {
		file     string
		capacity int64
	}
	var disks []disk
	for _, vm := range vms {
		devices := vm.Config.Hardware.Device
		caps := leaseCaps(ctx, vm, devices)
		for name, f := range leaseFiles(ctx, vm, devices) {
			if c, ok := caps[name]; ok {
				disks = append(disks, disk{f, c})
			}
		}
	}
	work := make(chan disk)
	errs := make(chan error, len(disks))
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range work {
				if _, err := r.cachedStream(d.file, d.capacity); err != nil {
					errs <- err
				}
			}
		}()
	}
	for _, d := range disks {
		work <- d
	}
	close(work)
	wg.Wait()
	close(errs)
	return <-errs
}
