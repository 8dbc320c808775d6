
import type { AgentOptions } from '../common/options';
import { SETTINGS } from '../common/settings';

/** The environment variables the preload reads, by the option each one sets (from the settings table). */
export const ENVIRONMENT_VARIABLES = Object.fromEntries(
  SETTINGS.filter((setting) => setting.variable).map((setting) => [setting.option, setting.variable!]),
) as Partial<Record<keyof AgentOptions, string>>;

/** Whether TCP_LEAK_AGENT_FAIL_ON_LEAK asks for a failing exit code; any non-empty value other than 0/false counts. */
export function failOnLeakRequested(env: NodeJS.ProcessEnv): boolean {
  const raw = env.TCP_LEAK_AGENT_FAIL_ON_LEAK;
  return raw !== undefined && raw !== '' && raw !== '0' && raw.toLowerCase() !== 'false';
}

/**
 * Reads the agent's options from environment variables. Unset or empty variables keep the default.
 * Throws InvalidSettingError naming the variable, its value and what is accepted.
 */
export function optionsFromEnvironment(env: NodeJS.ProcessEnv): AgentOptions {
  const options: Record<string, unknown> = {};
  for (const setting of SETTINGS) {
    if (!setting.variable || !setting.fromText) continue;
    const raw = env[setting.variable];
    if (raw === undefined || raw === '') continue;
    options[setting.option] = setting.fromText(raw, setting.variable);
  }
  return options as AgentOptions;
}


/**
 * TCP_LEAK_AGENT_ANNOTATIONS as the test-runner adapters read it (their agent takes no options from
 * the environment). Throws InvalidSettingError naming the variable on a bad value.
 */
export function annotationsRequested(env: NodeJS.ProcessEnv): boolean {
  const setting = SETTINGS.find((candidate) => candidate.option === 'annotations')!;
  const raw = env[setting.variable!];
  return raw === undefined || raw === '' ? (setting.default as boolean) : (setting.fromText!(raw, setting.variable!) as boolean);
}
