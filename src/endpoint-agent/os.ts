/**
 * The operating-system side of the endpoint agent, behind one interface so
 * that a port implements it and nothing else: the protocol, the poll loop,
 * package checks and reports are the same on every OS. os-linux.ts is the
 * Linux implementation.
 *
 * What a Windows port needs (not written yet):
 * - Service: a Windows service wrapper around `fleetboot-agent run` (e.g. a
 *   small service host or WinSW/NSSM), started automatically, restarted on
 *   failure; the log goes to the Event Log or a file.
 * - reboot(reason): `shutdown /r /t 0 /c REASON` or InitiateSystemShutdownExW
 *   with a planned reason code (the SeShutdownPrivilege is held by services).
 * - setHostname(name): `Rename-Computer -NewName NAME -Force` or
 *   SetComputerNameExW(ComputerNamePhysicalDnsHostname); it takes effect
 *   after a reboot: report succeeded with rebootRequested, or reboot.
 * - killTree(pid, graceMs): put each package process in a Job Object created
 *   with JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE before it runs (CREATE_SUSPENDED,
 *   AssignProcessToJobObject, ResumeThread); TerminateJobObject kills the
 *   whole tree, children that detached included. There is no SIGTERM: try
 *   CTRL_BREAK_EVENT to the process group first, then terminate after the grace.
 * - identity(): WMI Win32_ComputerSystemProduct UUID (and IdentifyingNumber
 *   as the serial), the MACs of Win32_NetworkAdapter with a MACAddress,
 *   the computer name, Win32_OperatingSystem Caption as `os`.
 * - inventory(): Win32_Processor, Win32_PhysicalMemory, Win32_DiskDrive,
 *   Win32_NetworkAdapter, Win32_BIOS into the same Inventory shape.
 * - State directory: %ProgramData%\Fleetboot\agent with an ACL granting only
 *   SYSTEM and Administrators (instead of the 0700/0600 modes checked here);
 *   the exit codes 3010/1641 of installers are the package's rebootCodes.
 */
import type { AgentIdentity } from '../model/endpoint.js';
import type { Inventory } from '../model/manifest.js';

export interface AgentOs {
  /** A name for logs ('linux'). */
  readonly name: string;
  /** Reboot the machine (the one reboot function: reboot work and reboot exit codes both come here). */
  reboot(reason: string): Promise<void>;
  /** Set the host name; resolves with one line saying how, throws with what failed. */
  setHostname(name: string): Promise<string>;
  /**
   * Kill a package's process and every process it started: a polite stop,
   * then a forced one after `graceMs`. Resolves when nothing of it is left.
   */
  killTree(pid: number, graceMs: number): Promise<number>;
  /** Who this machine is now. */
  identity(): AgentIdentity;
  /** The hardware inventory. */
  inventory(): Inventory;
}
