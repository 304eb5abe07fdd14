"""Master data the rules decide with: catalogue, prices, stock and customer accounts.

`gateway.masterdata.model` holds the values and the read interface (`MasterData`); the store
keeps them (`gateway.store.masterdata`); `gateway data import` loads them.
"""
