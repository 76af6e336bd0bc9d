import type { ReportCode } from '../../app/common/codes.js';

/**
 * A code outside the registry, for tests of the reporter itself: each test reports under its own code
 * so that its reports are told apart at the server. The product's callers are typed to the registry.
 */
export function testCode(name: `ERR_TEST_${string}`): ReportCode {
  return name as ReportCode;
}
