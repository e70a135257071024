import { graphql } from "@/gql";

export const CurrentPlanQuery = graphql(`
  query CurrentPlan($teamId: ID) {
    plans {
      id
      name
      priceCents
      currency
      interval
      isDefault
      entitlements {
        llmTokensPerMonth
        seats
        features
      }
    }
    mySubscription(teamId: $teamId) {
      id
      status
      currentPeriodEnd
      cancelAtPeriodEnd
      plan {
        id
        name
      }
      entitlements {
        llmTokensPerMonth
        seats
        features
      }
    }
  }
`);

interface PlanLike {
  id: string;
  name: string;
  isDefault: boolean;
}

/** The plan the team has now: its subscription's, else the default plan. */
export function currentPlanName(
  plans: readonly PlanLike[],
  subscription: { plan: { id: string; name: string }; status: string } | null | undefined,
): string {
  if (subscription && ["active", "trialing", "past_due"].includes(subscription.status)) {
    return subscription.plan.name;
  }
  return plans.find((plan) => plan.isDefault)?.name ?? "Free";
}

export function formatPrice(cents: number, currency: string, interval: string): string {
  if (cents === 0) return "Free";
  const amount = new Intl.NumberFormat(undefined, { style: "currency", currency: currency.toUpperCase() }).format(
    cents / 100,
  );
  return `${amount} / ${interval}`;
}
