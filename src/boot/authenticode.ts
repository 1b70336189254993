/**
 * Is this EFI executable (a Linux kernel with its EFI stub, a boot loader)
 * signed, and does its signature belong to these bytes? Pure: a Buffer in,
 * a verdict out.
 *
 * Under Secure Boot, shim and GRUB load a kernel only when its Authenticode
 * signature (Microsoft's "Windows Authenticode Portable Executable Signature
 * Format") verifies against a key they trust. Fleetboot checks the part it
 * can check without knowing the machine's keys, so that an entry whose
 * kernel would be refused gets a clear message instead of a machine stuck
 * at "bad shim signature":
 *
 * 1. the PE file has a certificate table (data directory 4) holding a
 *    WIN_CERTIFICATE of type PKCS_SIGNED_DATA;
 * 2. the Authenticode digest of the file (everything but the checksum, the
 *    certificate-table entry and the table itself; sections in file order)
 *    equals the digest in the signature's SpcIndirectDataContent: the file
 *    was not changed after it was signed;
 * 3. the signer's authenticated attributes carry the digest of that
 *    SpcIndirectDataContent, and the signer's certificate (in the
 *    signature) verifies the signature over those attributes.
 *
 * Whether the signer is trusted (Microsoft's UEFI CA in the firmware's db,
 * Debian's CA built into shim, a machine owner key) is the machine's
 * business: the verdict names the signer and its issuer so the log can say
 * who signed what.
 */
import { createHash, verify as cryptoVerify, X509Certificate } from 'node:crypto';
import { Asn1DecodeError, oid, readChildren, readTlv, TAG, type Tlv } from '../lib/asn1.js';

export type SignatureVerdict =
  | { readonly signed: true; readonly digest: string; readonly algorithm: 'sha256' | 'sha1'; readonly signer: string; readonly issuer: string }
  /** present: a signature is there but does not verify (changed after signing, malformed); false: none at all. */
  | { readonly signed: false; readonly present: boolean; readonly reason: string };

const WIN_CERT_TYPE_PKCS_SIGNED_DATA = 0x0002;
const OID_SIGNED_DATA = oid('1.2.840.113549.1.7.2');
const OID_SPC_INDIRECT_DATA = oid('1.3.6.1.4.1.311.2.1.4');
const OID_MESSAGE_DIGEST = oid('1.2.840.113549.1.9.4');
const DIGESTS: ReadonlyArray<{ oid: Buffer; name: 'sha256' | 'sha1' }> = [
  { oid: oid('2.16.840.1.101.3.4.2.1'), name: 'sha256' },
  { oid: oid('1.3.14.3.2.26'), name: 'sha1' },
];

class NotSigned extends Error {}

function fail(reason: string): never {
  throw new NotSigned(reason);
}

/** The PE layout Authenticode needs. */
interface PeLayout {
  checksumOffset: number;
  certEntryOffset: number;
  sizeOfHeaders: number;
  sections: Array<{ offset: number; size: number }>;
  certTable: { offset: number; size: number } | null;
}

function u16(b: Buffer, off: number, what: string): number {
  if (off < 0 || off + 2 > b.length) fail(`the file ends before ${what} (byte ${off})`);
  return b.readUInt16LE(off);
}
function u32(b: Buffer, off: number, what: string): number {
  if (off < 0 || off + 4 > b.length) fail(`the file ends before ${what} (byte ${off})`);
  return b.readUInt32LE(off);
}

/** Read the headers of a PE32/PE32+ image (the Microsoft PE format, "PE Format" in the Windows docs). */
export function peLayout(b: Buffer): PeLayout {
  if (b.length < 0x40 || b.toString('latin1', 0, 2) !== 'MZ') fail('it is not a PE/EFI executable (no "MZ" header)');
  const pe = u32(b, 0x3c, 'the PE header offset');
  if (pe + 24 > b.length || b.toString('latin1', pe, pe + 4) !== 'PE\0\0') fail('it is not a PE/EFI executable (no "PE" signature)');
  const sections = u16(b, pe + 6, 'the section count');
  const optSize = u16(b, pe + 20, 'the optional header size');
  const opt = pe + 24;
  const magic = u16(b, opt, 'the optional header');
  if (magic !== 0x10b && magic !== 0x20b) fail(`its optional header has magic 0x${magic.toString(16)} (expected 0x10b or 0x20b)`);
  const dirCountOffset = magic === 0x20b ? opt + 108 : opt + 92;
  const dirs = dirCountOffset + 4;
  const dirCount = u32(b, dirCountOffset, 'the data directory count');
  const certEntryOffset = dirs + 4 * 8;
  const sizeOfHeaders = u32(b, opt + 60, 'SizeOfHeaders');
  if (sizeOfHeaders > b.length) fail(`SizeOfHeaders (${sizeOfHeaders}) is past the end of the file (${b.length} bytes)`);
  if (certEntryOffset + 8 > opt + optSize || certEntryOffset + 8 > sizeOfHeaders) fail('its headers end before the certificate table entry');
  let certTable: PeLayout['certTable'] = null;
  if (dirCount > 4) {
    const offset = u32(b, certEntryOffset, 'the certificate table');
    const size = u32(b, certEntryOffset + 4, 'the certificate table');
    if (size > 0) {
      if (offset + size > b.length || offset < sizeOfHeaders) fail(`its certificate table (${size} bytes at ${offset}) is outside the file (${b.length} bytes)`);
      certTable = { offset, size };
    }
  }
  const table = opt + optSize;
  const list: PeLayout['sections'] = [];
  for (let i = 0; i < sections; i++) {
    const s = table + i * 40;
    const size = u32(b, s + 16, `section ${i}`);
    const offset = u32(b, s + 20, `section ${i}`);
    if (size === 0) continue;
    if (offset + size > b.length) fail(`section ${i} (${size} bytes at ${offset}) runs past the end of the file`);
    list.push({ offset, size });
  }
  list.sort((a, c) => a.offset - c.offset);
  return { checksumOffset: opt + 64, certEntryOffset, sizeOfHeaders, sections: list, certTable };
}

/** The Authenticode digest of a PE image (hex), as shim and GRUB compute it. */
export function authenticodeDigest(b: Buffer, algorithm: 'sha256' | 'sha1' = 'sha256', layout: PeLayout = peLayout(b)): string {
  const h = createHash(algorithm);
  h.update(b.subarray(0, layout.checksumOffset));
  h.update(b.subarray(layout.checksumOffset + 4, layout.certEntryOffset));
  h.update(b.subarray(layout.certEntryOffset + 8, layout.sizeOfHeaders));
  let hashed = layout.sizeOfHeaders;
  for (const s of layout.sections) {
    h.update(b.subarray(s.offset, s.offset + s.size));
    hashed += s.size;
  }
  // Data after the last section (shim does the same): up to the certificate table.
  const end = layout.certTable ? layout.certTable.offset : b.length;
  if (end > hashed) h.update(b.subarray(hashed, end));
  return h.digest('hex');
}

function child(list: Tlv[], i: number, tag: number, what: string): Tlv {
  const t = list[i];
  if (t === undefined || t.tag !== tag) fail(`its signature is malformed: ${what} was expected`);
  return t;
}

function bytesOf(buf: Buffer, t: Tlv): Buffer {
  return buf.subarray(t.start, t.end);
}

/** Issuer Name (TLV bytes) and serial number (INTEGER TLV bytes) of a DER certificate. */
function issuerAndSerial(cert: Buffer): { issuer: Buffer; serial: Buffer } {
  const top = readTlv(cert, 0);
  const tbs = readChildren(top.content)[0];
  if (!tbs) fail('a certificate in the signature is empty');
  const parts = readChildren(tbs.content);
  let i = 0;
  if (parts[0]?.tag === 0xa0) i = 1; // [0] version
  const serial = parts[i];
  const issuer = parts[i + 2];
  if (!serial || !issuer) fail('a certificate in the signature is malformed');
  return { issuer: bytesOf(tbs.content, issuer), serial: bytesOf(tbs.content, serial) };
}

function cnOf(dn: string): string {
  const m = /(?:^|\n)CN=([^\n]*)/.exec(dn);
  return m?.[1] ?? dn.replace(/\n/g, ', ');
}

/** Check one PKCS#7 SignedData blob against the file's digest. */
function checkPkcs7(p7: Buffer, file: Buffer, layout: PeLayout): SignatureVerdict {
  const ci = readChildren(readTlv(p7, 0).content);
  const type = child(ci, 0, TAG.OID, 'the content type');
  if (!bytesOf(readTlv(p7, 0).content, type).equals(OID_SIGNED_DATA)) fail('its signature is not PKCS#7 signedData');
  const sd = readChildren(readTlv(child(ci, 1, 0xa0, 'the signed data').content, 0).content);
  // version, digestAlgorithms, contentInfo, [0] certificates, [1] crls, signerInfos
  const contentInfo = readChildren(child(sd, 2, TAG.SEQUENCE, 'the content info').content);
  const ciParent = sd[2] as Tlv;
  const contentType = child(contentInfo, 0, TAG.OID, 'the content type');
  if (!bytesOf(ciParent.content, contentType).equals(OID_SPC_INDIRECT_DATA)) fail('its signature does not sign an Authenticode SpcIndirectDataContent');
  const explicit = child(contentInfo, 1, 0xa0, 'the signed content');
  const spc = readTlv(explicit.content, 0);
  const spcParts = readChildren(spc.content);
  const messageDigest = readChildren(child(spcParts, 1, TAG.SEQUENCE, 'the file digest').content);
  const algId = readChildren(child(messageDigest, 0, TAG.SEQUENCE, 'the digest algorithm').content);
  const algOid = bytesOf(messageDigest[0]?.content ?? Buffer.alloc(0), child(algId, 0, TAG.OID, 'the digest algorithm'));
  const alg = DIGESTS.find((d) => d.oid.equals(algOid));
  if (!alg) fail('its signature uses a digest other than SHA-256 or SHA-1');
  const signedDigest = child(messageDigest, 1, TAG.OCTET_STRING, 'the file digest').content.toString('hex');
  const actual = authenticodeDigest(file, alg.name, layout);
  if (actual !== signedDigest) fail(`its contents do not match its signature (the file was changed after it was signed: ${alg.name} ${actual}, signed ${signedDigest})`);

  let idx = 3;
  const certs: Buffer[] = [];
  if (sd[idx]?.tag === 0xa0) {
    for (const c of readChildren((sd[idx] as Tlv).content)) certs.push(bytesOf((sd[idx] as Tlv).content, c));
    idx++;
  }
  if (sd[idx]?.tag === 0xa1) idx++;
  const signers = readChildren(child(sd, idx, TAG.SET, 'the signer infos').content);
  const si = signers[0];
  if (!si) fail('its signature has no signer');
  const sp = readChildren(si.content);
  // version, issuerAndSerialNumber, digestAlgorithm, [0] authenticatedAttributes, digestEncryptionAlgorithm, encryptedDigest
  const ias = readChildren(child(sp, 1, TAG.SEQUENCE, "the signer's issuer and serial").content);
  const iasParent = sp[1] as Tlv;
  const wantIssuer = bytesOf(iasParent.content, ias[0] as Tlv);
  const wantSerial = bytesOf(iasParent.content, ias[1] as Tlv);
  const signerDer = certs.find((c) => {
    const is = issuerAndSerial(c);
    return is.issuer.equals(wantIssuer) && is.serial.equals(wantSerial);
  });
  if (!signerDer) fail("its signature does not carry the signer's certificate");
  const attrs = child(sp, 3, 0xa0, 'the authenticated attributes');
  const spcDigest = createHash(alg.name).update(spc.content).digest();
  const mdAttr = readChildren(attrs.content).find((a) => {
    const kids = readChildren(a.content);
    return kids[0] !== undefined && bytesOf(a.content, kids[0]).equals(OID_MESSAGE_DIGEST);
  });
  if (!mdAttr) fail('its signature has no messageDigest attribute');
  const mdSet = readChildren(mdAttr.content)[1];
  const md = mdSet ? readChildren(mdSet.content)[0] : undefined;
  if (!md || md.tag !== TAG.OCTET_STRING || !md.content.equals(spcDigest)) fail('its signed attributes do not match the signed content');
  const encrypted = child(sp, 5, TAG.OCTET_STRING, 'the signature value').content;
  // The signature covers the attributes as a SET OF (tag 0x31), not as the [0] they are stored as.
  const signedBytes = Buffer.from(bytesOf(si.content, attrs));
  signedBytes[0] = TAG.SET;
  const cert = new X509Certificate(signerDer);
  if (!cryptoVerify(alg.name, signedBytes, cert.publicKey, encrypted)) fail("its signature does not verify with the signer's certificate");
  return { signed: true, digest: actual, algorithm: alg.name, signer: cnOf(cert.subject), issuer: cnOf(cert.issuer) };
}

/** The verdict on an EFI executable's signature (see the header). Never throws. */
export function verifyAuthenticode(file: Buffer): SignatureVerdict {
  try {
    const layout = peLayout(file);
    if (layout.certTable === null) return { signed: false, present: false, reason: 'it has no signature (no certificate table)' };
    const { offset, size } = layout.certTable;
    let reason = 'its certificate table holds no PKCS#7 signature';
    let present = false;
    // WIN_CERTIFICATE entries, each 8-byte aligned: dwLength, wRevision, wCertificateType, bCertificate.
    for (let at = offset; at + 8 <= offset + size; ) {
      const len = file.readUInt32LE(at);
      const type = file.readUInt16LE(at + 6);
      if (len < 8 || at + len > offset + size) return { signed: false, present: true, reason: `its certificate table is malformed (an entry of ${len} bytes at ${at})` };
      if (type === WIN_CERT_TYPE_PKCS_SIGNED_DATA) {
        present = true;
        try {
          return checkPkcs7(file.subarray(at + 8, at + len), file, layout);
        } catch (err) {
          if (!(err instanceof NotSigned) && !(err instanceof Asn1DecodeError)) throw err;
          reason = err instanceof Asn1DecodeError ? `its signature is malformed: ${err.message}` : err.message;
        }
      }
      at += (len + 7) & ~7;
    }
    return { signed: false, present, reason };
  } catch (err) {
    if (err instanceof NotSigned) return { signed: false, present: false, reason: err.message };
    if (err instanceof Asn1DecodeError) return { signed: false, present: false, reason: `its signature is malformed: ${err.message}` };
    return { signed: false, present: false, reason: `it could not be read as a signed EFI executable: ${err instanceof Error ? err.message : String(err)}` };
  }
}
