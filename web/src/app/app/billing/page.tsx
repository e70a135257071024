"use client";

import { useSearchParams } from "next/navigation";
import { Suspense, useEffect, useState } from "react";
import { useMutation, useQuery } from "urql";
import { Button, Card, ErrorAlert, Loading, PageHeading } from "@/components/ui";
import { graphql } from "@/gql";
import { fromCombined, type ServerError } from "@/lib/errors";
import { CurrentPlanQuery, currentPlanName, formatPrice } from "@/lib/plan";
import { useTeamId } from "@/lib/team";

const Checkout = graphql(`
  mutation Checkout($planId: ID!, $teamId: ID) {
    createCheckoutSession(planId: $planId, teamId: $teamId) {
      id
      url
    }
  }
`);

const Portal = graphql(`
  mutation Portal($teamId: ID) {
    createBillingPortalSession(teamId: $teamId) {
      url
    }
  }
`);

function CheckoutOutcome() {
  const outcome = useSearchParams().get("checkout");
  if (outcome === "success") {
    return (
      <p role="status" className="rounded-md bg-green-50 p-3 text-sm text-green-900">
        Payment received. The plan below is updated as soon as the payment is confirmed.
      </p>
    );
  }
  if (outcome === "canceled") {
    return (
      <p role="status" className="rounded-md bg-slate-100 p-3 text-sm">
        Checkout canceled: nothing was charged.
      </p>
    );
  }
  return null;
}

export default function BillingPage() {
  const teamId = useTeamId();
  const [{ data, error, fetching }, reexecute] = useQuery({ query: CurrentPlanQuery, variables: { teamId } });
  const [, checkout] = useMutation(Checkout);
  const [, portal] = useMutation(Portal);
  const [errors, setErrors] = useState<ServerError[]>([]);
  const [busy, setBusy] = useState<string | null>(null);

  const go = async (planId: string) => {
    setErrors([]);
    setBusy(planId);
    const result = await checkout({ planId, teamId });
    if (result.error || !result.data) {
      setBusy(null);
      setErrors(fromCombined(result.error));
      return;
    }
    window.location.assign(result.data.createCheckoutSession.url);
  };
  const manage = async () => {
    setErrors([]);
    const result = await portal({ teamId });
    if (result.error || !result.data) {
      setErrors(fromCombined(result.error));
      return;
    }
    window.location.assign(result.data.createBillingPortalSession.url);
  };

  const subscription = data?.mySubscription;
  // Back from checkout, the subscription starts once the payment's webhook is
  // processed: ask again for a little while until it shows.
  const waiting = !subscription && data !== undefined;
  useEffect(() => {
    if (!waiting || new URLSearchParams(window.location.search).get("checkout") !== "success") return;
    let tries = 0;
    const timer = setInterval(() => {
      tries += 1;
      if (tries > 30) clearInterval(timer);
      else reexecute({ requestPolicy: "network-only" });
    }, 1000);
    return () => clearInterval(timer);
  }, [waiting, reexecute]);
  const current = data ? currentPlanName(data.plans, subscription) : null;
  const entitlements = subscription?.entitlements ?? data?.plans.find((plan) => plan.isDefault)?.entitlements;
  return (
    <>
      <PageHeading>Billing</PageHeading>
      <Suspense>
        <CheckoutOutcome />
      </Suspense>
      <ErrorAlert errors={[...fromCombined(error), ...errors]} />
      {!data && fetching ? <Loading /> : null}
      {data ? (
        <>
          <Card>
            <p className="text-lg">Current plan: {current}</p>
            {subscription ? (
              <p className="text-sm text-slate-700">
                Status: {subscription.status}
                {subscription.currentPeriodEnd
                  ? ` · ${subscription.cancelAtPeriodEnd ? "ends" : "renews"} on ${new Date(subscription.currentPeriodEnd).toLocaleDateString()}`
                  : ""}
              </p>
            ) : null}
            {entitlements ? (
              <p className="mt-2 text-sm text-slate-700">
                {entitlements.seats} seats · {entitlements.llmTokensPerMonth.toLocaleString()} LLM tokens a month
                {entitlements.features.length ? ` · ${entitlements.features.join(", ")}` : ""}
              </p>
            ) : null}
            {subscription ? (
              <div className="mt-3">
                <Button variant="secondary" onClick={() => void manage()}>
                  Manage billing
                </Button>
              </div>
            ) : null}
          </Card>
          <div className="grid gap-4 md:grid-cols-3">
            {data.plans.map((plan) => (
              <section key={plan.id} className="flex flex-col gap-2 rounded-lg border border-slate-200 bg-white p-4">
                <h2 className="text-lg font-semibold">{plan.name}</h2>
                <p>{formatPrice(plan.priceCents, plan.currency, plan.interval)}</p>
                <ul className="text-sm text-slate-700">
                  <li>{plan.entitlements.seats} seats</li>
                  <li>{plan.entitlements.llmTokensPerMonth.toLocaleString()} LLM tokens a month</li>
                  {plan.entitlements.features.map((feature) => (
                    <li key={feature}>{feature}</li>
                  ))}
                </ul>
                {plan.name === current ? (
                  <p className="mt-auto text-sm font-medium text-indigo-800">Your plan</p>
                ) : (
                  <Button
                    className="mt-auto"
                    onClick={() => void (plan.isDefault ? manage() : go(plan.id))}
                    disabled={busy !== null}
                  >
                    {`Choose ${plan.name}`}
                  </Button>
                )}
              </section>
            ))}
          </div>
        </>
      ) : null}
    </>
  );
}
