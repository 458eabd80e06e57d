// SPDX-License-Identifier: LGPL-3.0-or-later

// OvfManager.CreateDescriptor, added to vcsim (which only has the import side).
//
// The descriptor is an OVF 1.x envelope shaped like the ones vCenter writes:
// References (one File per OvfFile given), DiskSection, NetworkSection, and one
// VirtualSystem with OperatingSystemSection and a VirtualHardwareSection of
// CIM RASD items: CPU, memory, every controller, then disks, CD-ROMs,
// floppies, NICs, the video card; vmw:Config firmware.  Controllers come
// before the devices on them because importers (vcsim's among them) resolve
// rasd:Parent in document order.
//
// The OvfFiles the caller passes are matched to devices by deviceId, which may
// be any of the keys a lease gives for the device: vSphere's
// /vm-N/<controller class><bus>:<unit> (ExportVm), the same with the VM name
// (importKey), or vcsim's /vm-N/<kind>:<index> (ExportSnapshot).  A matched
// disk gets a File (href = OvfFile.path, size = OvfFile.size) and a fileRef;
// an unmatched deviceId is refused with InvalidArgument, as a descriptor that
// silently drops a disk loses data.  A disk without an OvfFile is described
// without a fileRef (a blank disk), as vCenter does.
package main

import (
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

type ovfManager struct {
	*simulator.OvfManager
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// rasd is one Item; fields are written in the CIM schema's (alphabetical)
// order, empty ones omitted.
type rasd struct {
	Address, AddressOnParent, AllocationUnits, AutomaticAllocation string
	Connection, Description, ElementName, HostResource, InstanceID string
	Parent, ResourceSubType, ResourceType, VirtualQuantity, Extra  string
	optional                                                       bool
}

func (r *rasd) write(b *strings.Builder) {
	if r.optional {
		b.WriteString("      <Item ovf:required=\"false\">\n")
	} else {
		b.WriteString("      <Item>\n")
	}
	for _, f := range []struct{ k, v string }{
		{"Address", r.Address}, {"AddressOnParent", r.AddressOnParent},
		{"AllocationUnits", r.AllocationUnits}, {"AutomaticAllocation", r.AutomaticAllocation},
		{"Connection", r.Connection}, {"Description", r.Description},
		{"ElementName", r.ElementName}, {"HostResource", r.HostResource},
		{"InstanceID", r.InstanceID}, {"Parent", r.Parent},
		{"ResourceSubType", r.ResourceSubType}, {"ResourceType", r.ResourceType},
		{"VirtualQuantity", r.VirtualQuantity},
	} {
		if f.v != "" {
			fmt.Fprintf(b, "        <rasd:%s>%s</rasd:%s>\n", f.k, esc(f.v), f.k)
		}
	}
	b.WriteString(r.Extra)
	b.WriteString("      </Item>\n")
}

// capacityUnits expresses bytes in the largest power-of-two unit that divides
// them exactly, as vCenter writes disk capacity.
func capacityUnits(n int64) (string, string) {
	for _, p := range []int{30, 20, 10} {
		if n > 0 && n%(int64(1)<<p) == 0 {
			return strconv.FormatInt(n>>p, 10), fmt.Sprintf("byte * 2^%d", p)
		}
	}
	return strconv.FormatInt(n, 10), "byte"
}

// cimOS maps a few guest ids to CIM_OperatingSystem ids; anything else is
// "Other" or "Other 64-Bit".
var cimOS = map[string]int{
	"otherGuest": 1, "otherGuest64": 102, "otherLinuxGuest": 36, "otherLinux64Guest": 101,
	"ubuntuGuest": 93, "ubuntu64Guest": 94, "centos64Guest": 107, "debian10_64Guest": 96,
	"rhel7_64Guest": 80, "rhel8_64Guest": 80, "rhel9_64Guest": 80,
	"windows9_64Guest": 103, "windows2019srv_64Guest": 112,
}

func scsiSubType(d types.BaseVirtualDevice) string {
	switch d.(type) {
	case *types.ParaVirtualSCSIController:
		return "VirtualSCSI"
	case *types.VirtualLsiLogicSASController:
		return "lsilogicsas"
	case *types.VirtualBusLogicController:
		return "buslogic"
	}
	return "lsilogic"
}

func nicSubType(d types.BaseVirtualDevice) string {
	switch d.(type) {
	case *types.VirtualE1000:
		return "E1000"
	case *types.VirtualE1000e:
		return "E1000e"
	case *types.VirtualVmxnet2:
		return "VmxNet2"
	case *types.VirtualPCNet32:
		return "PCNet32"
	}
	return "VmxNet3"
}

// networkName names the network a NIC is on, as the NetworkSection does.
func networkName(ctx *simulator.Context, b types.BaseVirtualDeviceBackingInfo) string {
	switch nb := b.(type) {
	case *types.VirtualEthernetCardNetworkBackingInfo:
		return nb.DeviceName
	case *types.VirtualEthernetCardDistributedVirtualPortBackingInfo:
		ref := types.ManagedObjectReference{Type: "DistributedVirtualPortgroup", Value: nb.Port.PortgroupKey}
		if pg, ok := ctx.Map.Get(ref).(*simulator.DistributedVirtualPortgroup); ok {
			return pg.Name
		}
		return nb.Port.PortgroupKey
	case *types.VirtualEthernetCardOpaqueNetworkBackingInfo:
		return nb.OpaqueNetworkId
	}
	return "VM Network"
}

// deviceKeys lists every key a lease may give a device (see header comment).
func deviceKeys(devices object.VirtualDeviceList, vm *simulator.VirtualMachine) map[int32][]string {
	keys := make(map[int32][]string)
	nkind := make(map[string]int)
	for _, d := range devices {
		vd := d.GetVirtualDevice()
		if _, ok := vd.Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
			kind := devices.Type(d)
			keys[vd.Key] = append(keys[vd.Key], fmt.Sprintf("/%s/%s:%d", vm.Self.Value, kind, nkind[kind]))
			nkind[kind]++
		}
		if vd.ControllerKey != 0 {
			keys[vd.Key] = append(keys[vd.Key], deviceKey(devices, vm.Self.Value, d), deviceKey(devices, vm.Name, d))
		}
	}
	return keys
}

func (o *ovfManager) CreateDescriptor(ctx *simulator.Context, req *types.CreateDescriptor) soap.HasFault {
	body := new(methods.CreateDescriptorBody)
	obj := ctx.Map.Get(req.Obj)
	if obj == nil {
		body.Fault_ = simulator.Fault("", &types.ManagedObjectNotFound{Obj: req.Obj})
		return body
	}
	vm, ok := obj.(*simulator.VirtualMachine)
	if !ok {
		body.Fault_ = simulator.Fault("CreateDescriptor: only a VirtualMachine can be described",
			&types.InvalidArgument{InvalidProperty: "obj"})
		return body
	}
	var desc string
	var fault *soap.Fault
	ctx.WithLock(vm, func() { desc, fault = describe(ctx, vm, &req.Cdp) })
	if fault != nil {
		body.Fault_ = fault
		return body
	}
	body.Res = &types.CreateDescriptorResponse{Returnval: types.OvfCreateDescriptorResult{
		OvfDescriptor:     desc,
		IncludeImageFiles: req.Cdp.IncludeImageFiles,
	}}
	return body
}

func describe(ctx *simulator.Context, vm *simulator.VirtualMachine, cdp *types.OvfCreateDescriptorParams) (string, *soap.Fault) {
	config := vm.Config
	if cdp.Snapshot != nil {
		s, ok := ctx.Map.Get(*cdp.Snapshot).(*simulator.VirtualMachineSnapshot)
		if !ok || s.Vm != vm.Self {
			return "", simulator.Fault("CreateDescriptor: snapshot is not one of the VM's",
				&types.InvalidArgument{InvalidProperty: "cdp.snapshot"})
		}
		config = &s.Config
	}
	if config == nil {
		return "", simulator.Fault("CreateDescriptor: VM has no configuration",
			&types.InvalidState{})
	}
	devices := object.VirtualDeviceList(config.Hardware.Device)
	name := cdp.Name
	if name == "" {
		name = vm.Name
	}
	opts := make(map[string]bool)
	for _, e := range cdp.ExportOption {
		opts[e] = true
	}
	images := cdp.IncludeImageFiles != nil && *cdp.IncludeImageFiles

	// OvfFile by device key.
	keys := deviceKeys(devices, vm)
	fileOf := make(map[int32]*types.OvfFile)
	for i := range cdp.OvfFiles {
		f := &cdp.OvfFiles[i]
		found := false
		for dkey, ks := range keys {
			for _, k := range ks {
				if k == f.DeviceId {
					fileOf[dkey] = f
					found = true
				}
			}
		}
		if !found {
			return "", simulator.Fault(fmt.Sprintf("CreateDescriptor: ovfFiles[%d].deviceId %q names no device of %s",
				i, f.DeviceId, vm.Name), &types.InvalidArgument{InvalidProperty: "cdp.ovfFiles"})
		}
	}

	var refs, disks, nets, items strings.Builder
	nfile, ndisk := 0, 0
	addFile := func(f *types.OvfFile) string {
		nfile++
		id := fmt.Sprintf("file%d", nfile)
		fmt.Fprintf(&refs, "    <File ovf:href=\"%s\" ovf:id=\"%s\" ovf:size=\"%d\"", esc(f.Path), id, f.Size)
		if f.CompressionMethod != "" {
			fmt.Fprintf(&refs, " ovf:compression=\"%s\"", esc(f.CompressionMethod))
		}
		if f.ChunkSize > 0 {
			fmt.Fprintf(&refs, " ovf:chunkSize=\"%d\"", f.ChunkSize)
		}
		refs.WriteString("/>\n")
		return id
	}
	netSeen := make(map[string]bool)
	instance := 0
	nextID := func() string { instance++; return strconv.Itoa(instance) }
	idOf := make(map[int32]string) // device key -> InstanceID

	ncpu := config.Hardware.NumCPU
	cps := config.Hardware.NumCoresPerSocket
	cpu := rasd{AllocationUnits: "hertz * 10^6", Description: "Number of Virtual CPUs",
		ElementName: fmt.Sprintf("%d virtual CPU(s)", ncpu), InstanceID: nextID(),
		ResourceType: "3", VirtualQuantity: strconv.Itoa(int(ncpu))}
	if cps > 0 {
		cpu.Extra = fmt.Sprintf("        <vmw:CoresPerSocket ovf:required=\"false\">%d</vmw:CoresPerSocket>\n", cps)
	}
	cpu.write(&items)
	mem := rasd{AllocationUnits: "byte * 2^20", Description: "Memory Size",
		ElementName: fmt.Sprintf("%dMB of memory", config.Hardware.MemoryMB), InstanceID: nextID(),
		ResourceType: "4", VirtualQuantity: strconv.Itoa(int(config.Hardware.MemoryMB))}
	mem.write(&items)

	label := func(d types.BaseVirtualDevice, def string) string {
		if di := d.GetVirtualDevice().DeviceInfo; di != nil && di.GetDescription().Label != "" {
			return di.GetDescription().Label
		}
		return def
	}
	unit := func(d types.BaseVirtualDevice) string {
		if u := d.GetVirtualDevice().UnitNumber; u != nil {
			return strconv.Itoa(int(*u))
		}
		return "0"
	}

	// Controllers first.
	for _, d := range devices {
		key := d.GetVirtualDevice().Key
		var r *rasd
		switch c := d.(type) {
		case *types.VirtualIDEController:
			r = &rasd{Address: strconv.Itoa(int(c.BusNumber)), Description: "IDE Controller",
				ElementName: fmt.Sprintf("IDE %d", c.BusNumber), ResourceSubType: "PIIX4", ResourceType: "5"}
		case types.BaseVirtualSCSIController:
			sc := c.GetVirtualSCSIController()
			r = &rasd{Address: strconv.Itoa(int(sc.BusNumber)), Description: "SCSI Controller",
				ElementName:     fmt.Sprintf("SCSI Controller %d", sc.BusNumber),
				ResourceSubType: scsiSubType(d), ResourceType: "6"}
		case *types.VirtualAHCIController:
			r = &rasd{Address: strconv.Itoa(int(c.BusNumber)), Description: "SATA Controller",
				ElementName:     fmt.Sprintf("SATA Controller %d", c.BusNumber),
				ResourceSubType: "vmware.sata.ahci", ResourceType: "20"}
		case *types.VirtualNVMEController:
			r = &rasd{Address: strconv.Itoa(int(c.BusNumber)), Description: "NVME Controller",
				ElementName:     fmt.Sprintf("NVME Controller %d", c.BusNumber),
				ResourceSubType: "vmware.nvme.controller", ResourceType: "20"}
		case *types.VirtualUSBController:
			r = &rasd{Address: strconv.Itoa(int(c.BusNumber)), Description: "USB Controller (EHCI)",
				ElementName: "USB controller", ResourceSubType: "vmware.usb.ehci", ResourceType: "23",
				optional: true}
		}
		if r != nil {
			r.InstanceID = nextID()
			idOf[key] = r.InstanceID
			r.write(&items)
		}
	}

	for _, d := range devices {
		vd := d.GetVirtualDevice()
		parent := idOf[vd.ControllerKey]
		switch x := d.(type) {
		case *types.VirtualDisk:
			ndisk++
			diskID := fmt.Sprintf("vmdisk%d", ndisk)
			capBytes := x.CapacityInBytes
			if capBytes == 0 {
				capBytes = x.CapacityInKB * 1024
			}
			c, u := capacityUnits(capBytes)
			fmt.Fprintf(&disks, "    <Disk ovf:capacity=\"%s\" ovf:capacityAllocationUnits=\"%s\" ovf:diskId=\"%s\"", c, u, diskID)
			if f := fileOf[vd.Key]; f != nil {
				fmt.Fprintf(&disks, " ovf:fileRef=\"%s\"", addFile(f))
				if f.PopulatedSize > 0 {
					fmt.Fprintf(&disks, " ovf:populatedSize=\"%d\"", f.PopulatedSize)
				}
			}
			disks.WriteString(" ovf:format=\"http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized\"/>\n")
			r := rasd{AddressOnParent: unit(d), ElementName: label(d, fmt.Sprintf("Hard disk %d", ndisk)),
				HostResource: "ovf:/disk/" + diskID, InstanceID: nextID(), Parent: parent, ResourceType: "17"}
			r.write(&items)
		case *types.VirtualCdrom:
			r := rasd{AddressOnParent: unit(d), AutomaticAllocation: "false",
				ElementName: label(d, "CD/DVD drive"), InstanceID: nextID(), Parent: parent,
				ResourceType: "15", optional: true}
			switch x.Backing.(type) {
			case *types.VirtualCdromIsoBackingInfo:
				r.ResourceSubType = "vmware.cdrom.iso"
				if f := fileOf[vd.Key]; f != nil && images {
					r.HostResource = "ovf:/file/" + addFile(f)
				}
			case *types.VirtualCdromAtapiBackingInfo:
				r.ResourceSubType = "vmware.cdrom.atapi"
			case *types.VirtualCdromRemoteAtapiBackingInfo:
				r.ResourceSubType = "vmware.cdrom.remoteatapi"
			default:
				r.ResourceSubType = "vmware.cdrom.remotepassthrough"
			}
			r.write(&items)
		case *types.VirtualFloppy:
			r := rasd{AddressOnParent: unit(d), AutomaticAllocation: "false",
				ElementName: label(d, "Floppy drive"), InstanceID: nextID(),
				ResourceType: "14", optional: true}
			if _, ok := x.Backing.(*types.VirtualFloppyImageBackingInfo); ok {
				r.ResourceSubType = "vmware.floppy.image"
				if f := fileOf[vd.Key]; f != nil && images {
					r.HostResource = "ovf:/file/" + addFile(f)
				}
			} else {
				r.ResourceSubType = "vmware.floppy.remotedevice"
			}
			r.write(&items)
		case types.BaseVirtualEthernetCard:
			net := networkName(ctx, vd.Backing)
			if !netSeen[net] {
				netSeen[net] = true
				fmt.Fprintf(&nets, "    <Network ovf:name=\"%s\">\n      <Description>The %s network</Description>\n    </Network>\n",
					esc(net), esc(net))
			}
			sub := nicSubType(d)
			r := rasd{AddressOnParent: unit(d), AutomaticAllocation: "true", Connection: net,
				Description: fmt.Sprintf("%s ethernet adapter on \"%s\"", sub, net),
				ElementName: label(d, "Network adapter"), InstanceID: nextID(),
				ResourceSubType: sub, ResourceType: "10"}
			if opts["mac"] {
				r.Address = x.GetVirtualEthernetCard().MacAddress
			}
			r.write(&items)
		case *types.VirtualMachineVideoCard:
			r := rasd{AutomaticAllocation: "false", ElementName: label(d, "Video card"),
				InstanceID: nextID(), ResourceType: "24", optional: true}
			r.write(&items)
		}
	}

	osid, ok := cimOS[config.GuestId]
	if !ok {
		osid = 1
		if strings.Contains(config.GuestId, "64") {
			osid = 102
		}
	}
	version := config.Version
	if version == "" {
		version = "vmx-13"
	}
	firmware := config.Firmware
	if firmware == "" {
		firmware = "bios"
	}

	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">` + "\n")
	b.WriteString("  <References>\n" + refs.String() + "  </References>\n")
	b.WriteString("  <DiskSection>\n    <Info>Virtual disk information</Info>\n" + disks.String() + "  </DiskSection>\n")
	b.WriteString("  <NetworkSection>\n    <Info>The list of logical networks</Info>\n" + nets.String() + "  </NetworkSection>\n")
	fmt.Fprintf(&b, "  <VirtualSystem ovf:id=\"%s\">\n    <Info>A virtual machine</Info>\n    <Name>%s</Name>\n", esc(name), esc(name))
	annotation := cdp.Description
	if annotation == "" {
		annotation = config.Annotation
	}
	if annotation != "" {
		fmt.Fprintf(&b, "    <AnnotationSection ovf:required=\"false\">\n      <Info>A human-readable annotation</Info>\n      <Annotation>%s</Annotation>\n    </AnnotationSection>\n", esc(annotation))
	}
	fmt.Fprintf(&b, "    <OperatingSystemSection ovf:id=\"%d\" vmw:osType=\"%s\">\n      <Info>The kind of installed guest operating system</Info>\n", osid, esc(config.GuestId))
	if config.GuestFullName != "" {
		fmt.Fprintf(&b, "      <Description>%s</Description>\n", esc(config.GuestFullName))
	}
	b.WriteString("    </OperatingSystemSection>\n")
	b.WriteString("    <VirtualHardwareSection>\n      <Info>Virtual hardware requirements</Info>\n      <System>\n")
	fmt.Fprintf(&b, "        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>\n        <vssd:InstanceID>0</vssd:InstanceID>\n        <vssd:VirtualSystemIdentifier>%s</vssd:VirtualSystemIdentifier>\n        <vssd:VirtualSystemType>%s</vssd:VirtualSystemType>\n      </System>\n", esc(name), esc(version))
	b.WriteString(items.String())
	fmt.Fprintf(&b, "      <vmw:Config ovf:required=\"false\" vmw:key=\"firmware\" vmw:value=\"%s\"/>\n", esc(firmware))
	if opts["extraconfig"] {
		for _, ov := range config.ExtraConfig {
			o := ov.GetOptionValue()
			fmt.Fprintf(&b, "      <vmw:ExtraConfig ovf:required=\"false\" vmw:key=\"%s\" vmw:value=\"%s\"/>\n", esc(o.Key), esc(fmt.Sprint(o.Value)))
		}
	}
	b.WriteString("    </VirtualHardwareSection>\n  </VirtualSystem>\n</Envelope>\n")
	return b.String(), nil
}
