// Drives a VM lifecycle through the npm `proxmox-api` client against the simulator:
// clone, start, snapshot, disk add, migrate, stop, delete. Every task must end OK.
// Env: PVE_HOST, PVE_PORT, PVE_TOKEN (USER@REALM!ID), PVE_SECRET. Prints one JSON line.
"use strict";
const proxmoxApi = require("proxmox-api").default;

const pve = proxmoxApi({
  host: process.env.PVE_HOST,
  port: Number(process.env.PVE_PORT),
  schema: "http",
  tokenID: process.env.PVE_TOKEN,
  tokenSecret: process.env.PVE_SECRET,
});
const steps = [];

async function done(node, upid) {
  for (let i = 0; i < 2000; i++) {
    const status = await pve.nodes.$(node).tasks.$(upid).status.$get();
    if (status.status === "stopped") {
      if (status.exitstatus !== "OK") throw new Error(`${upid}: ${status.exitstatus}`);
      steps.push(status.type);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`${upid} did not finish`);
}

async function main() {
  const newid = Number(await pve.cluster.nextid.$get());
  const source = pve.nodes.$("pve1").qemu.$(9000);
  await done("pve1", await source.clone.$post({ newid, name: "npm-lab", full: 1 }));
  let vm = pve.nodes.$("pve1").qemu.$(newid);
  await done("pve1", await vm.status.start.$post());
  await done("pve1", await vm.snapshot.$post({ snapname: "fresh", description: "npm" }));
  await done("pve1", await vm.config.$post({ scsi1: "ceph:2" }));
  const config = await vm.config.$get();
  if (!/^ceph:vm-\d+-disk-\d+,size=2G$/.test(config.scsi1)) throw new Error(config.scsi1);
  await done("pve1", await vm.migrate.$post({ target: "pve2", online: 1 }));
  vm = pve.nodes.$("pve2").qemu.$(newid);
  const current = await vm.status.current.$get();
  if (current.status !== "running") throw new Error(`after migrate: ${current.status}`);
  await done("pve2", await vm.status.stop.$post());
  const snapshots = (await vm.snapshot.$get()).map((s) => s.name);
  await done("pve2", await vm.$delete({ purge: 1 }));
  const left = (await pve.cluster.resources.$get({ type: "vm" })).filter((r) => r.vmid === newid);
  if (left.length) throw new Error("the VM is still listed");
  console.log(JSON.stringify({ newid, steps, snapshots, disk: config.scsi1 }));
}

main().catch((err) => {
  console.error(String(err && err.stack ? err.stack : err));
  process.exit(1);
});
