/** A step of the story found something wrong: its message says what, for the reader of the demo. */
export class Failure extends Error {}

/** The story stopped: `message` says where; the temporary folder is kept for a look. */
export class StoryFailed extends Error {
  override name = 'StoryFailed';
  constructor(
    message: string,
    readonly workDir: string,
  ) {
    super(message);
  }
}
