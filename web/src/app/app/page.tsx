"use client";

import Link from "next/link";
import { useQuery } from "urql";
import { Card, ErrorAlert, Loading, PageHeading } from "@/components/ui";
import { graphql } from "@/gql";
import { fromCombined } from "@/lib/errors";
import { CurrentPlanQuery, currentPlanName } from "@/lib/plan";
import { useTeamId } from "@/lib/team";

const OverviewQuery = graphql(`
  query Overview($teamId: ID!) {
    team(id: $teamId) {
      id
      name
      members {
        userId
        email
        role
      }
    }
    notifications(first: 5) {
      id
      title
      createdAt
      readAt
    }
  }
`);

const UsageQuery = graphql(`
  query OverviewUsage($teamId: ID) {
    llmUsage(teamId: $teamId) {
      tokensUsed
      tokensPerPeriod
      periodEnd
    }
    usage(period: MONTH, teamId: $teamId) {
      start
      costUsd
      promptTokens
      completionTokens
    }
  }
`);

export default function OverviewPage() {
  const teamId = useTeamId();
  const [plan] = useQuery({ query: CurrentPlanQuery, variables: { teamId } });
  const [overview] = useQuery({ query: OverviewQuery, variables: { teamId: teamId ?? "" }, pause: !teamId });
  const [usage] = useQuery({ query: UsageQuery, variables: { teamId } });
  const cost = usage.data?.usage.at(-1)?.costUsd ?? 0;
  return (
    <>
      <PageHeading>Overview</PageHeading>
      <ErrorAlert errors={fromCombined(plan.error)} />
      <div className="grid gap-4 lg:grid-cols-2">
        <Card title="Plan">
          {plan.data ? (
            <p>
              Current plan: {currentPlanName(plan.data.plans, plan.data.mySubscription)}{" "}
              <Link className="ml-2 text-sm text-indigo-700 underline" href="/app/billing">
                Billing
              </Link>
            </p>
          ) : plan.error ? null : (
            <Loading />
          )}
        </Card>
        <Card title="LLM usage this month">
          {usage.data ? (
            <dl className="grid grid-cols-2 gap-2 text-sm">
              <dt className="text-slate-600">Tokens</dt>
              <dd>
                {usage.data.llmUsage.tokensUsed.toLocaleString()} of {usage.data.llmUsage.tokensPerPeriod.toLocaleString()}
              </dd>
              <dt className="text-slate-600">Cost</dt>
              <dd>${cost.toFixed(4)}</dd>
            </dl>
          ) : usage.error ? (
            <p className="text-sm text-slate-600">{fromCombined(usage.error)[0]?.message}</p>
          ) : (
            <Loading />
          )}
        </Card>
        <Card title="Members">
          <ErrorAlert errors={fromCombined(overview.error)} />
          {overview.data?.team ? (
            <ul className="text-sm">
              {overview.data.team.members.map((member) => (
                <li key={member.userId} className="flex justify-between gap-2 py-1">
                  <span className="truncate">{member.email}</span>
                  <span className="text-slate-600">{member.role}</span>
                </li>
              ))}
            </ul>
          ) : overview.fetching ? (
            <Loading />
          ) : null}
        </Card>
        <Card title="Recent notifications">
          {overview.data ? (
            overview.data.notifications.length === 0 ? (
              <p className="text-sm text-slate-600">Nothing yet.</p>
            ) : (
              <ul className="text-sm">
                {overview.data.notifications.map((n) => (
                  <li key={n.id} className="py-1">
                    {n.readAt ? n.title : <strong>{n.title}</strong>}
                  </li>
                ))}
              </ul>
            )
          ) : null}
        </Card>
      </div>
    </>
  );
}
