import { roleSatisfies } from '../../src/common/auth-scope';

describe('roleSatisfies', () => {
  it('lets owners do everything and members all but owner-only routes', () => {
    expect(roleSatisfies('owner', 'owner')).toBe(true);
    expect(roleSatisfies('owner', 'member')).toBe(true);
    expect(roleSatisfies('owner', undefined)).toBe(true);
    expect(roleSatisfies('member', undefined)).toBe(true);
    expect(roleSatisfies('member', 'member')).toBe(true);
    expect(roleSatisfies('member', 'owner')).toBe(false);
  });
});
