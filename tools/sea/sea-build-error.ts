/** A build of the updater's single executables stopped: the message says why and what to do. */
export class SeaBuildError extends Error {
  override name = 'SeaBuildError';
}
