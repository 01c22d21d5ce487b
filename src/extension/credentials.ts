// Secrets and host keys for connections made from the editor. Passwords and passphrases are asked
// for once and kept in SecretStorage (never in the config); a host key fingerprint the user trusted
// is kept in global state. A changed host key is refused by the backend itself, never asked about.
import * as vscode from 'vscode';
import type { ConnectOptions } from '../backends/registry';
import type { SyncTargetConfig } from '../config/workspaceConfig';

const SECRET_PREFIX = 'syncengine.secret:';
const HOST_KEYS = 'syncengine.trustedHostKeys';

/** The answers given while one connection was opened, saved only once it succeeded. */
export class PendingSecrets {
  readonly answered = new Map<string, string>();
}

export class Credentials {
  constructor(private readonly context: vscode.ExtensionContext) {}

  /** Connect options for a target: config settings, known answers, and prompts through the editor. */
  async connectOptions(config: SyncTargetConfig, pending: PendingSecrets, warn: (message: string) => void): Promise<ConnectOptions> {
    const options: ConnectOptions = { ...config.connect, warn };
    const trusted = this.trustedHostKeys()[hostKeyId(config)];
    if (trusted) options.acceptHostKey = trusted;
    options.prompt = (question, { secret }) => this.ask(config, question, secret, pending);
    return options;
  }

  /** Keep what the user typed for a connection that worked. */
  async commit(pending: PendingSecrets): Promise<void> {
    for (const [key, value] of pending.answered) await this.context.secrets.store(key, value);
    pending.answered.clear();
  }

  /** Forget stored secrets of a target (after they were refused). */
  async forget(config: SyncTargetConfig): Promise<void> {
    const index = this.context.globalState.get<string[]>(indexKey(config)) ?? [];
    for (const key of index) await this.context.secrets.delete(key);
    await this.context.globalState.update(indexKey(config), undefined);
  }

  private trustedHostKeys(): Record<string, string> {
    return this.context.globalState.get<Record<string, string>>(HOST_KEYS) ?? {};
  }

  private async ask(config: SyncTargetConfig, question: string, secret: boolean, pending: PendingSecrets): Promise<string | undefined> {
    const hostKey = /fingerprint is (SHA256:\S+?)\.?\s*$/m.exec(question);
    if (hostKey) return this.confirmHostKey(config, question, hostKey[1]!);
    const key = `${SECRET_PREFIX}${config.url}\n${question}`;
    if (secret) {
      const stored = await this.context.secrets.get(key);
      if (stored !== undefined) return stored;
    }
    if (!vscode.workspace.isTrusted) return undefined;
    const answer = await vscode.window.showInputBox({
      title: `SyncEngine: ${config.name}`,
      prompt: question.trim().replace(/:$/, ''),
      password: secret,
      ignoreFocusOut: true,
    });
    if (answer !== undefined && secret) {
      pending.answered.set(key, answer);
      const index = new Set(this.context.globalState.get<string[]>(indexKey(config)) ?? []);
      index.add(key);
      await this.context.globalState.update(indexKey(config), [...index]);
    }
    return answer;
  }

  private async confirmHostKey(config: SyncTargetConfig, question: string, fingerprint: string): Promise<string | undefined> {
    const detail = question.replace(/\n?Trust it\? \(yes\/no\)\s*$/, '');
    const choice = await vscode.window.showWarningMessage(
      `SyncEngine: the host of "${config.name}" is not known yet.`,
      { modal: true, detail: `${detail}\n\nTrust this host key only if you can confirm the fingerprint with the server's administrator.` },
      'Trust and Connect',
    );
    if (choice !== 'Trust and Connect') return 'no';
    await this.context.globalState.update(HOST_KEYS, { ...this.trustedHostKeys(), [hostKeyId(config)]: fingerprint });
    return 'yes';
  }
}

function hostKeyId(config: SyncTargetConfig): string {
  const t = config.target;
  return t.kind === 'sftp' ? `${t.host}:${t.port ?? 22}` : config.url;
}

function indexKey(config: SyncTargetConfig): string {
  return `syncengine.secretKeys:${config.url}`;
}
