import { FakeProvider } from './fake-provider';
import { GatewayOptions, TestGateway } from './gateway';

export interface ProviderSetup {
  /** Seeded provider ids to point at the fake provider, in this order. */
  providers: string | string[];
  /** The provider key stored with them (TestGateway.useProvider's default if absent). */
  providerKey?: string;
  gateway?: GatewayOptions;
}

/** A gateway whose given providers point at `provider`; closed again if that fails half way. */
export async function startGatewayUsing(provider: FakeProvider, setup: ProviderSetup): Promise<TestGateway> {
  const gw = await TestGateway.start(setup.gateway);
  try {
    for (const id of [setup.providers].flat()) await gw.useProvider(id, provider.url, setup.providerKey);
  } catch (err) {
    await gw.close();
    throw err;
  }
  return gw;
}

/** A fresh fake provider and a gateway (with its own database) whose given providers point at it. */
export async function startWithFakeProvider(setup: ProviderSetup): Promise<{ gw: TestGateway; provider: FakeProvider }> {
  const provider = await FakeProvider.start();
  try {
    return { gw: await startGatewayUsing(provider, setup), provider };
  } catch (err) {
    await provider.close();
    throw err;
  }
}

/** Closes each in turn (skipping the ones that never started). */
export async function closeAll(...resources: Array<{ close(): Promise<void> } | undefined>): Promise<void> {
  for (const resource of resources) await resource?.close();
}
