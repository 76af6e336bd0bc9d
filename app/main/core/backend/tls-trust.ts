import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import tls from 'node:tls';
import { describeFsError, ErrorCode, OutpostError } from '../../../base/errors.js';

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * The certificates the agent trusts for its backend (feed, push channel, reports) when the
 * organisation adds its own CA (`backend.ca_file`): Node's roots, the operating system's, and the
 * organisation's. Undefined without a file: Node's defaults, untouched. Read once, at start: a file
 * that cannot be read, or that holds no certificate or a damaged one, stops the start with a
 * configuration error that names it, rather than every connection failing later for a reason the
 * log would not give.
 */
export function backendCertificates(caFile: string | null): string[] | undefined {
  if (caFile === null) return undefined;
  const fix = 'Fix backend.ca_file in config.json (a PEM file of CA certificates), or set it to null.';
  let text: string;
  try {
    text = fs.readFileSync(caFile, 'utf8');
  } catch (error) {
    throw new OutpostError(ErrorCode.CONFIG_INVALID, `The organisation's CA file ${caFile} cannot be read: ${describeFsError(error)}. ${fix}`, { cause: error });
  }
  const certificates = text.match(PEM_CERTIFICATE) ?? [];
  if (certificates.length === 0) throw new OutpostError(ErrorCode.CONFIG_INVALID, `The organisation's CA file ${caFile} holds no PEM certificate. ${fix}`);
  certificates.forEach((pem, i) => {
    try {
      new X509Certificate(pem);
    } catch (error) {
      throw new OutpostError(ErrorCode.CONFIG_INVALID, `The organisation's CA file ${caFile} holds a damaged certificate (number ${i + 1}). ${fix}`, { cause: error });
    }
  });
  return [...tls.getCACertificates('default'), ...tls.getCACertificates('system'), ...certificates];
}
