// SPDX-License-Identifier: LGPL-3.0-or-later

// Parallel VM creation for large inventories.
//
// vcsim's Model.Create makes its VMs one CreateVM_Task (and PowerOnVM_Task)
// at a time and each waits for its task through the property collector:
// about 30-40 ms of mostly idle time per VM, over three minutes for the 5,000
// VMs of the benchmark.  For big inventories the rig has vcsim build
// everything but the VMs, then issues the same CreateVM_Task calls, with the
// same names, placement and devices as vcsim's addMachine, from several
// goroutines.  Only the order in which VMs get their moref differs, which is
// why small inventories (the tests' usual ones) keep vcsim's sequential,
// reproducible path.
package main

import (
	"context"
	"fmt"
	"path"
	"sort"
	"sync"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/simulator/esx"
	"github.com/vmware/govmomi/units"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// parallelThreshold: above this many VMs, create them in parallel.
const parallelThreshold = 200

// slot is one place vcsim's addMachine puts VMs: a name prefix, a pool, a
// folder and (for a standalone host) the host.
type slot struct {
	prefix string
	pool   *object.ResourcePool
	host   *object.HostSystem
	folder *object.Folder
	nic    types.BaseVirtualDeviceBackingInfo
}

func byName[T mo.Entity](s []T) {
	sort.Slice(s, func(i, j int) bool { return s[i].Entity().Name < s[j].Entity().Name })
}

// slots lists the places the model would have put VMs, in vcsim's order.
func slots(ctx context.Context, c *vim25.Client, m *simulator.Model, esxMode bool, pools int) ([]slot, error) {
	reg := m.Map()
	var out []slot
	if esxMode {
		host := object.NewHostSystem(c, esx.HostSystem.Reference())
		pool, err := host.ResourcePool(ctx)
		if err != nil {
			return nil, err
		}
		dc := object.NewDatacenter(c, esx.Datacenter.Reference())
		f, err := dc.Folders(ctx)
		if err != nil {
			return nil, err
		}
		return []slot{{prefix: host.Reference().Value, pool: pool, host: host, folder: f.VmFolder,
			nic: esx.EthernetCard.Backing}}, nil
	}
	var dcs []*simulator.Datacenter
	for _, e := range reg.All("Datacenter") {
		dcs = append(dcs, e.(*simulator.Datacenter))
	}
	byName(dcs)
	for _, d := range dcs {
		dc := object.NewDatacenter(c, d.Self)
		f, err := dc.Folders(ctx)
		if err != nil {
			return nil, err
		}
		vmFolder := f.VmFolder
		// A datacenter vcsim put in a folder has its VMs in the vm folder's
		// only subfolder.
		if vf, ok := reg.Get(vmFolder.Reference()).(*simulator.Folder); ok {
			var sub []types.ManagedObjectReference
			for _, ch := range vf.ChildEntity {
				if ch.Type == "Folder" {
					sub = append(sub, ch)
				}
			}
			if len(sub) == 1 && d.Parent != nil && *d.Parent != m.ServiceContent.RootFolder {
				vmFolder = object.NewFolder(c, sub[0])
			}
		}
		var nic types.BaseVirtualDeviceBackingInfo = esx.EthernetCard.Backing
		for _, e := range reg.All("DistributedVirtualPortgroup") {
			pg := e.(*simulator.DistributedVirtualPortgroup)
			if pg.Name == d.Name+"_DVPG0" {
				b, err := object.NewDistributedVirtualPortgroup(c, pg.Self).EthernetCardBackingInfo(ctx)
				if err != nil {
					return nil, err
				}
				nic = b
			}
		}
		inDC := func(e mo.Entity) bool {
			for p := e.Entity().Parent; p != nil; {
				if *p == d.Self {
					return true
				}
				pe, ok := reg.Get(*p).(mo.Entity)
				if !ok {
					return false
				}
				p = pe.Entity().Parent
			}
			return false
		}
		var standalone []*mo.ComputeResource
		for _, e := range reg.All("ComputeResource") {
			if cr, ok := e.(*mo.ComputeResource); ok && inDC(cr) {
				standalone = append(standalone, cr)
			}
		}
		byName(standalone)
		for _, cr := range standalone {
			if len(cr.Host) == 0 || cr.ResourcePool == nil {
				continue
			}
			out = append(out, slot{prefix: cr.Name, pool: object.NewResourcePool(c, *cr.ResourcePool),
				host: object.NewHostSystem(c, cr.Host[0]), folder: vmFolder, nic: nic})
		}
		var clusters []*simulator.ClusterComputeResource
		for _, e := range reg.All("ClusterComputeResource") {
			if cc, ok := e.(*simulator.ClusterComputeResource); ok && inDC(cc) {
				clusters = append(clusters, cc)
			}
		}
		byName(clusters)
		for _, cc := range clusters {
			if cc.ResourcePool == nil {
				continue
			}
			root := reg.Get(*cc.ResourcePool).(*simulator.ResourcePool)
			if pools == 0 {
				out = append(out, slot{prefix: cc.Name + "_RP0", pool: object.NewResourcePool(c, root.Self),
					folder: vmFolder, nic: nic})
				continue
			}
			for i := 1; i <= pools; i++ {
				name := fmt.Sprintf("%s_RP%d", cc.Name, i)
				for _, ch := range root.ResourcePool.ResourcePool {
					if rp, ok := reg.Get(ch).(mo.Entity); ok && rp.Entity().Name == name {
						out = append(out, slot{prefix: name, pool: object.NewResourcePool(c, ch),
							folder: vmFolder, nic: nic})
					}
				}
			}
		}
	}
	return out, nil
}

// createMachines makes n VMs in every slot with workers goroutines, each VM
// configured as vcsim's addMachine does, powered on when power is set.
func createMachines(ctx context.Context, c *vim25.Client, m *simulator.Model, esxMode bool, pools, n int, power bool, workers int) error {
	ss, err := slots(ctx, c, m, esxMode, pools)
	if err != nil {
		return err
	}
	type job struct {
		s    slot
		name string
	}
	jobs := make(chan job)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if err := createMachine(ctx, c, m.Map(), j.s, j.name, power); err != nil {
					errs <- fmt.Errorf("%s: %v", j.name, err)
					for range jobs {
					}
					return
				}
			}
		}()
	}
	for _, s := range ss {
		for i := 0; i < n; i++ {
			jobs <- job{s, fmt.Sprintf("%s_VM%d", s.prefix, i)}
		}
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

func createMachine(ctx context.Context, c *vim25.Client, reg *simulator.Registry, s slot, name string, power bool) error {
	config := types.VirtualMachineConfigSpec{
		Name:    name,
		GuestId: string(types.VirtualMachineGuestOsIdentifierOtherGuest),
		Files:   &types.VirtualMachineFileInfo{VmPathName: "[LocalDS_0]"},
	}
	var devices object.VirtualDeviceList
	scsi, _ := devices.CreateSCSIController("pvscsi")
	ide, _ := devices.CreateIDEController()
	cdrom, _ := devices.CreateCdrom(ide.(*types.VirtualIDEController))
	disk := devices.CreateDisk(scsi.(types.BaseVirtualController), types.ManagedObjectReference{},
		config.Files.VmPathName+" "+path.Join(name, "disk1.vmdk"))
	disk.CapacityInKB = int64(units.GB*10) / units.KB
	disk.StorageIOAllocation = &types.StorageIOAllocationInfo{Limit: types.NewInt64(-1)}
	nic := esx.EthernetCard
	nic.Backing = s.nic
	devices = append(devices, scsi, cdrom, disk, &nic)
	config.DeviceChange, _ = devices.ConfigSpec(types.VirtualDeviceConfigSpecOperationAdd)

	task, err := s.folder.CreateVM(ctx, config, s.pool, s.host)
	if err != nil {
		return err
	}
	res, err := waitTask(reg, task.Reference())
	if err != nil || !power {
		return err
	}
	vm := object.NewVirtualMachine(c, res.(types.ManagedObjectReference))
	task, err = vm.PowerOn(ctx)
	if err != nil {
		return err
	}
	_, err = waitTask(reg, task.Reference())
	return err
}

// waitTask waits for a vcsim task by polling the task object itself
// (simulator.Task.Wait): waiting through the property collector, as a
// client must, costs a filter per task whose updates every later change
// fans out to, and made creation CPU-bound.
func waitTask(reg *simulator.Registry, ref types.ManagedObjectReference) (types.AnyType, error) {
	t, ok := reg.Get(ref).(*simulator.Task)
	if !ok {
		return nil, fmt.Errorf("task %s vanished", ref)
	}
	t.Wait()
	var res types.AnyType
	var fault *types.LocalizedMethodFault
	reg.WithLock(&simulator.Context{}, t, func() {
		res, fault = t.Info.Result, t.Info.Error
	})
	if fault != nil {
		return nil, fmt.Errorf("%s: %s", ref, fault.LocalizedMessage)
	}
	return res, nil
}
