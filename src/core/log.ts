// Structured JSON logs (pino) to stderr; level from AMBIT_LOG_LEVEL (default info).
import { pino, type Logger } from "pino";

export type { Logger };

export function createLogger(component: string, level = process.env.AMBIT_LOG_LEVEL ?? "info"): Logger {
  return pino(
    { name: `ambit-${component}`, level, base: { component } },
    pino.destination({ fd: 2, sync: false }),
  );
}

/** A logger that drops everything, for tests and library defaults. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
