import type { ReactNode } from "react";

/** A data table named by its caption (its accessible name); scrolls sideways on a phone. */
export function Table({ name, columns, children, empty }: { name: string; columns: string[]; children: ReactNode; empty?: string }) {
  return (
    <div className="overflow-x-auto rounded-lg border border-slate-200 bg-white">
      <table className="w-full text-left text-sm">
        <caption className="sr-only">{name}</caption>
        <thead className="bg-slate-50 text-slate-700">
          <tr>
            {columns.map((column) => (
              <th key={column} scope="col" className="px-3 py-2 font-medium">
                {column}
              </th>
            ))}
          </tr>
        </thead>
        <tbody className="divide-y divide-slate-100">{children}</tbody>
      </table>
      {empty ? <p className="px-3 py-2 text-sm text-slate-600">{empty}</p> : null}
    </div>
  );
}

export function Cell({ children, header }: { children: ReactNode; header?: boolean }) {
  if (header) {
    return (
      <th scope="row" className="px-3 py-2 font-normal">
        {children}
      </th>
    );
  }
  return <td className="px-3 py-2 align-middle">{children}</td>;
}
