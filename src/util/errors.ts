// Errors that reach the user as one line, each kind with its own exit code.

export const ExitCode = {
  OK: 0,
  FAILURE: 1, // the operation failed; state unchanged where possible
  USAGE: 64, // bad command line
  UNSUPPORTED: 65, // the process holds something crmigrate cannot move yet
  BAD_IMAGE: 66, // corrupted, truncated or foreign image
  NO_PROCESS: 67, // no such process
  PID_TAKEN: 68, // the PID to restore is in use
  MISSING_FILE: 69, // a file the image needs is absent or different
  SYSTEM: 71, // a kernel facility failed
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export class CrmError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCodeValue = ExitCode.FAILURE,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CrmError';
  }
}

export class UnsupportedError extends CrmError {
  constructor(message: string) {
    super(message, ExitCode.UNSUPPORTED);
    this.name = 'UnsupportedError';
  }
}

export class ImageError extends CrmError {
  constructor(message: string) {
    super(message, ExitCode.BAD_IMAGE);
    this.name = 'ImageError';
  }
}

export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}
