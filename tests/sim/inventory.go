// SPDX-License-Identifier: LGPL-3.0-or-later

// Inventory shaping done after vcsim has built its model and before the server
// listens: extra disks, disk capacity and contents, power states.  Changes that
// have a vSphere API (adding a disk, powering on) go through vcsim's own
// methods via the in-process client; disk contents are written straight into
// the files that back the datastores, which is what a real datastore holds.
package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
)

type diskOpts struct {
	extra    int    // disks added to each VM
	size     int64  // bytes written to each disk file (0: leave vcsim's files)
	capacity int64  // disk capacity (0: size, or vcsim's default)
	fill     string // zero|random|pattern|mix[:R:P:Z]
	seed     int64
	mix      [3]uint64 // mix weights: random, repeated, hole
}

// parseMix checks a -disk-fill value and returns the weights of mix (zero
// for the other fills).
func parseMix(s string) ([3]uint64, error) {
	var w [3]uint64
	switch s {
	case "zero", "random", "pattern":
		return w, nil
	case "mix":
		return [3]uint64{2, 1, 1}, nil
	}
	p := strings.Split(s, ":")
	if len(p) == 4 && p[0] == "mix" {
		for i := range w {
			n, err := strconv.ParseUint(p[i+1], 10, 16)
			if err != nil {
				return w, fmt.Errorf("bad weight %q in %q", p[i+1], s)
			}
			w[i] = n
		}
		if w[0]+w[1]+w[2] > 0 {
			return w, nil
		}
	}
	return w, fmt.Errorf("want zero, random, pattern or mix[:R:P:Z] with some weight, got %q", s)
}

// allVMs returns the VMs sorted by name, so every shaping step is
// deterministic.
func allVMs(m *simulator.Model) []*simulator.VirtualMachine {
	var vms []*simulator.VirtualMachine
	for _, e := range m.Map().All("VirtualMachine") {
		if vm, ok := e.(*simulator.VirtualMachine); ok {
			vms = append(vms, vm)
		}
	}
	sort.Slice(vms, func(i, j int) bool { return vms[i].Name < vms[j].Name })
	return vms
}

func vmDisks(vm *simulator.VirtualMachine) []*types.VirtualDisk {
	var disks []*types.VirtualDisk
	for _, d := range vm.Config.Hardware.Device {
		if disk, ok := d.(*types.VirtualDisk); ok {
			disks = append(disks, disk)
		}
	}
	return disks
}

// addDisks gives each VM n more disks on the controller of its first disk, in
// one ReconfigVM_Task each, so vcsim creates their files as it always does.
func addDisks(ctx context.Context, c *vim25.Client, m *simulator.Model, n int, capacity int64) error {
	for _, vm := range allVMs(m) {
		o := object.NewVirtualMachine(c, vm.Self)
		devices := object.VirtualDeviceList(vm.Config.Hardware.Device)
		first := vmDisks(vm)
		if len(first) == 0 {
			continue
		}
		ctrl, ok := devices.FindByKey(first[0].ControllerKey).(types.BaseVirtualController)
		if !ok {
			return fmt.Errorf("%s: disk without a controller", vm.Name)
		}
		b := first[0].Backing.(types.BaseVirtualDeviceFileBackingInfo).GetVirtualDeviceFileBackingInfo()
		var add []types.BaseVirtualDevice
		for i := 0; i < n; i++ {
			// No file name: vcsim names it in the VM's folder (VM_1.vmdk, ...).
			disk := devices.CreateDisk(ctrl, *b.Datastore, "")
			disk.CapacityInKB = (capacity + 1023) / 1024
			disk.CapacityInBytes = capacity
			devices = append(devices, disk)
			add = append(add, disk)
		}
		if err := o.AddDevice(ctx, add...); err != nil {
			return fmt.Errorf("%s: adding disks: %v", vm.Name, err)
		}
	}
	return nil
}

// setCapacity sets every disk's capacity; done on the model directly because
// vSphere has no way to shrink a disk and vcsim's default disk is 10 GiB.
func setCapacity(m *simulator.Model, capacity int64) {
	for _, vm := range allVMs(m) {
		for _, d := range vmDisks(vm) {
			d.CapacityInBytes = capacity
			d.CapacityInKB = (capacity + 1023) / 1024
			if di := d.DeviceInfo; di != nil {
				di.GetDescription().Summary = fmt.Sprintf("%d KB", d.CapacityInKB)
			}
		}
	}
}

// fillDisks writes size bytes into the file behind every VM disk.  random is
// deterministic in (seed, VM name, disk index) so a test can regenerate or
// simply compare with the file; pattern stamps every 512-byte sector with
// its VM, disk and sector number so a misplaced or spliced range is visible.
func fillDisks(ctx context.Context, c *vim25.Client, m *simulator.Model, o diskOpts) error {
	sctx := m.Service.Context
	for _, vm := range allVMs(m) {
		for i, d := range vmDisks(vm) {
			b, ok := d.Backing.(types.BaseVirtualDeviceFileBackingInfo)
			if !ok {
				continue
			}
			file, ok := diskFile(sctx, vm, b)
			if !ok {
				return fmt.Errorf("%s: cannot resolve %s", vm.Name, b.GetVirtualDeviceFileBackingInfo().FileName)
			}
			if err := writeDisk(file, vm.Name, i, o); err != nil {
				return err
			}
		}
		if err := object.NewVirtualMachine(c, vm.Self).RefreshStorageInfo(ctx); err != nil {
			return err
		}
	}
	return nil
}

func writeDisk(file, vm string, disk int, o diskOpts) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if o.fill == "zero" {
		if err := f.Truncate(o.size); err != nil {
			return err
		}
		return f.Close()
	}
	if o.mix != [3]uint64{} {
		return writeMix(f, file, vm, disk, o)
	}
	var rng *rand.ChaCha8
	if o.fill == "random" {
		seed := sha256.Sum256([]byte(fmt.Sprintf("h2k-sim\x00%d\x00%s\x00%d", o.seed, vm, disk)))
		rng = rand.NewChaCha8(seed)
	}
	buf := make([]byte, 1<<20)
	for off := int64(0); off < o.size; off += int64(len(buf)) {
		n := int(min(int64(len(buf)), o.size-off))
		if rng != nil {
			_, _ = rng.Read(buf[:n])
		} else {
			patternFill(buf[:n], off, vm, disk)
		}
		if _, err := f.Write(buf[:n]); err != nil {
			return fmt.Errorf("%s: %v", file, err)
		}
	}
	return f.Close()
}

// writeMix lays the disk out as extents of 4 KiB to 2 MiB (a multiple of
// 4 KiB, so they straddle 64 KiB grains) of random bytes, of one random 4 KiB
// block repeated, or holes (never written: the file stays sparse there), the
// kind drawn with the -disk-fill weights.  Lengths, kinds and bytes all come
// from one generator seeded by (seed, VM name, disk index).
func writeMix(f *os.File, file, vm string, disk int, o diskOpts) error {
	seed := sha256.Sum256([]byte(fmt.Sprintf("h2k-sim mix\x00%d\x00%s\x00%d", o.seed, vm, disk)))
	rng := rand.NewChaCha8(seed)
	total := o.mix[0] + o.mix[1] + o.mix[2]
	buf := make([]byte, 2<<20)
	for off := int64(0); off < o.size; {
		n := min(int64(1+rng.Uint64()%512)*4096, o.size-off)
		k := rng.Uint64() % total
		switch {
		case k < o.mix[0]:
			_, _ = rng.Read(buf[:n])
		case k < o.mix[0]+o.mix[1]:
			_, _ = rng.Read(buf[:4096])
			for i := int64(4096); i < n; i += 4096 {
				copy(buf[i:n], buf[:4096])
			}
		default:
			off += n
			continue
		}
		if _, err := f.WriteAt(buf[:n], off); err != nil {
			return fmt.Errorf("%s: %v", file, err)
		}
		off += n
	}
	if err := f.Truncate(o.size); err != nil {
		return fmt.Errorf("%s: %v", file, err)
	}
	return f.Close()
}

// patternFill fills p, which starts at byte offset off of the disk.
func patternFill(p []byte, off int64, vm string, disk int) {
	for i := range p {
		p[i] = byte((off + int64(i)) / 512)
	}
	// Stamp the sector headers that fall inside p.
	for s := (off + 511) / 512 * 512; s < off+int64(len(p)); s += 512 {
		hdr := fmt.Sprintf("h2k-sim %s disk %d sector %d\n", vm, disk, s/512)
		copy(p[s-off:], hdr)
	}
}

var vmIndex = regexp.MustCompile(`_VM([0-9]+)$`)

// powerMixed powers on the VMs whose name ends in an even VM number
// (..._VM0, _VM2, ...); the others stay off.
func powerMixed(ctx context.Context, c *vim25.Client, m *simulator.Model) error {
	for _, vm := range allVMs(m) {
		match := vmIndex.FindStringSubmatch(vm.Name)
		if match == nil {
			continue
		}
		n, _ := strconv.Atoi(match[1])
		if n%2 != 0 || vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn {
			continue
		}
		task, err := object.NewVirtualMachine(c, vm.Self).PowerOn(ctx)
		if err == nil {
			err = task.Wait(ctx)
		}
		if err != nil {
			return fmt.Errorf("%s: power on: %v", vm.Name, err)
		}
	}
	return nil
}

// fixCdroms moves a CD-ROM that vcsim's model left on the SCSI controller (at
// the unit number of the first disk, a configuration vSphere cannot have) to
// a free unit of an IDE controller, where vSphere puts a VM's CD-ROM.
// Without this a descriptor of the VM describes a SCSI CD-ROM, which
// importers (vcsim's included) refuse or choke on.  vcsim gives every VM the
// same IDE controller objects (its defaults are shared pointers), so each VM
// first gets its own copies, whose device lists are rebuilt from the devices
// that name them.
func fixCdroms(m *simulator.Model) {
	for _, vm := range allVMs(m) {
		devs := vm.Config.Hardware.Device
		var ides []*types.VirtualIDEController
		for i, d := range devs {
			if ide, ok := d.(*types.VirtualIDEController); ok {
				c := *ide
				c.Device = nil
				devs[i] = &c
				ides = append(ides, &c)
			}
		}
		if len(ides) == 0 {
			continue
		}
		used := make(map[int32]map[int32]bool)
		for _, c := range ides {
			used[c.Key] = make(map[int32]bool)
		}
		list := object.VirtualDeviceList(devs)
		var move []*types.VirtualDevice
		for _, d := range devs {
			vd := d.GetVirtualDevice()
			if u, ok := used[vd.ControllerKey]; ok && vd.UnitNumber != nil {
				u[*vd.UnitNumber] = true
			}
			if _, ok := d.(*types.VirtualCdrom); ok {
				if sc, ok := list.FindByKey(vd.ControllerKey).(types.BaseVirtualSCSIController); ok {
					c := sc.GetVirtualSCSIController()
					var keep []int32
					for _, k := range c.Device {
						if k != vd.Key {
							keep = append(keep, k)
						}
					}
					c.Device = keep
					move = append(move, vd)
				}
			}
		}
	next:
		for _, vd := range move {
			for _, c := range ides {
				for unit := int32(0); unit < 2; unit++ {
					if !used[c.Key][unit] {
						used[c.Key][unit] = true
						u := unit
						vd.ControllerKey, vd.UnitNumber = c.Key, &u
						continue next
					}
				}
			}
		}
		for _, d := range devs {
			vd := d.GetVirtualDevice()
			for _, c := range ides {
				if vd.ControllerKey == c.Key {
					c.Device = append(c.Device, vd.Key)
				}
			}
		}
	}
}
